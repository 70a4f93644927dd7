/* arena.h - a per-thread bump allocator for cJSON's short-lived trees.
 *
 * Parsing one SES event builds a cJSON tree of a few hundred small blocks
 * that all die together a few microseconds later; through malloc and free
 * that was about 15 % of the process's CPU at saturation. Inside a scope
 * (arena_begin .. arena_end) on a thread, cJSON's allocations come from
 * that thread's arena, its frees of them do nothing, and arena_end drops
 * them all at once. Outside a scope, and on every other thread, cJSON uses
 * malloc and free as before: cJSON_InitHooks is process-wide, the scope is
 * per thread.
 *
 * The rule for a scope: nothing allocated in it outlives it. A string made
 * by cJSON inside it (cJSON_Print*) and kept must go through arena_take;
 * a cJSON tree made inside it must not be kept or handed to another thread.
 *
 * Bounded: a thread keeps one ARENA_CHUNK between scopes; larger documents
 * take more chunks, each freed at arena_end. Under AddressSanitizer the
 * arena poisons what it hands out again at arena_end and leaves poisoned
 * gaps between blocks, so a use after the scope or past a block's end is
 * reported as it would be with malloc. */
#ifndef SESLOG_ARENA_H
#define SESLOG_ARENA_H

#include <stddef.h>

#define ARENA_CHUNK (64 * 1024) /* bytes of the chunk a thread keeps */

/* Makes cJSON allocate through the arena (inside a scope) or malloc
 * (outside). Call once at start, before any thread uses cJSON. */
void arena_install_cjson(void);

/* Opens a scope on the calling thread. Scopes nest: an inner begin/end
 * pair changes nothing, the outermost arena_end frees. */
void arena_begin(void);

/* Closes the calling thread's innermost scope; the outermost one frees
 * every block allocated since its arena_begin. Without an open scope it
 * does nothing. */
void arena_end(void);

/* Depth of the calling thread's scopes (0: none open). */
int arena_depth(void);

/* n bytes (aligned for any type) from the calling thread's arena inside a
 * scope, from malloc outside one; NULL when out of memory. */
void *arena_alloc(size_t n);

/* Frees p from arena_alloc (or any malloc'ed p): a block of the calling
 * thread's open scope is left for arena_end (the most recent one is given
 * back at once), anything else goes to free. NULL does nothing. */
void arena_free(void *p);

/* 1 when p lies in a block of the calling thread's open scope. */
int arena_owns(const void *p);

/* A NUL-terminated string the caller owns with malloc: s itself when it is
 * not the arena's, else a malloc'ed copy of it. NULL when s is NULL or the
 * copy cannot be made (s then simply dies with the scope). */
char *arena_take(char *s);

/* Bytes of memory the calling thread's arena holds (chunks), for tests. */
size_t arena_held(void);

#endif
