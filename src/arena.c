/* arena.c - the per-thread bump allocator behind cJSON (arena.h). */
#include "arena.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "util.h"

#if defined(__SANITIZE_ADDRESS__)
#define ARENA_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ARENA_ASAN 1
#endif
#endif

#ifdef ARENA_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#define REDZONE 32 /* poisoned bytes after each block: an overrun is reported */
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#define REDZONE 0
#endif

#define ALIGN 16                    /* alignof(max_align_t) on the targets */
#define BIG (ARENA_CHUNK / 4)       /* a block this large gets a chunk of its own */
#define CHUNK_MAX (4 * 1024 * 1024) /* growth stops doubling here */
#define ROUND(n) (((n) + ALIGN - 1) & ~(size_t)(ALIGN - 1))

/* One piece of memory blocks are cut from. */
struct chunk {
  struct chunk *next; /* older chunks */
  size_t size;        /* bytes in data */
  size_t used;        /* bytes of data handed out */
  _Alignas(ALIGN) unsigned char data[];
};

/* A thread's arena. */
struct arena {
  struct chunk *head; /* the chunk small blocks are cut from; older ones behind */
  int depth;          /* scopes open */
  void *last;         /* the latest block of head, which a free can give back */
  size_t grow;        /* size of the next small chunk (0: ARENA_CHUNK) */
};

static __thread struct arena ta;

/* The chunk a thread keeps between scopes is freed when the thread ends. */
static pthread_key_t exit_key;
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;
static int exit_key_ok;

static void chunk_free(struct chunk *c) {
  UNPOISON(c->data, c->size);
  free(c);
}

static void on_thread_exit(void *p) {
  (void)p;
  while (ta.head) {
    struct chunk *c = ta.head;
    ta.head = c->next;
    chunk_free(c);
  }
}

static void make_exit_key(void) {
  exit_key_ok = pthread_key_create(&exit_key, on_thread_exit) == 0;
}

/* A new chunk of at least need bytes of data, poisoned, or NULL. */
static struct chunk *chunk_new(size_t need) {
  if (need > SIZE_MAX - sizeof(struct chunk)) return NULL;
  struct chunk *c = malloc(sizeof *c + need);
  if (!c) return NULL;
  c->next = NULL;
  c->size = need;
  c->used = 0;
  POISON(c->data, need);
  return c;
}

/* The arena's first chunk on this thread: register the exit hook. */
static void note_thread(void) {
  pthread_once(&exit_once, make_exit_key);
  if (exit_key_ok) (void)pthread_setspecific(exit_key, &ta);
}

/* Cuts n bytes from a's chunks, adding one when needed. */
static void *bump(struct arena *a, size_t n) {
  if (n > SIZE_MAX / 2) return NULL;
  size_t need = ROUND(n ? n : 1) + REDZONE;
  struct chunk *c = a->head;
  if (need >= BIG) {
    /* its own chunk, behind head, so head keeps serving small blocks */
    struct chunk *big = chunk_new(need);
    if (!big) return NULL;
    if (!a->head) note_thread();
    if (c) {
      big->next = c->next;
      c->next = big;
    } else {
      a->head = big;
    }
    big->used = need;
    UNPOISON(big->data, n);
    return big->data;
  }
  if (!c || c->size - c->used < need) {
    size_t size = a->grow ? a->grow : ARENA_CHUNK;
    struct chunk *fresh = chunk_new(size);
    if (!fresh) return NULL;
    a->grow = size < CHUNK_MAX ? 2 * size : CHUNK_MAX;
    if (!a->head) note_thread();
    fresh->next = c;
    a->head = c = fresh;
  }
  void *p = c->data + c->used;
  c->used += need;
  UNPOISON(p, n);
  a->last = p;
  return p;
}

/* The chunk of a that holds p, or NULL. */
static struct chunk *chunk_of(const struct arena *a, const void *p) {
  const unsigned char *q = p;
  for (struct chunk *c = a->head; c; c = c->next)
    if (q >= c->data && q < c->data + c->used) return c;
  return NULL;
}

void arena_begin(void) {
  ta.depth++;
}

void arena_end(void) {
  struct arena *a = &ta;
  if (a->depth <= 0 || --a->depth > 0) return;
  /* Keep one chunk of ARENA_CHUNK (the oldest small one, usually the only
   * one); free the rest. */
  struct chunk *keep = NULL;
  while (a->head) {
    struct chunk *c = a->head;
    a->head = c->next;
    if (!keep && c->size == ARENA_CHUNK) {
      keep = c;
    } else {
      chunk_free(c);
    }
  }
  if (keep) {
    keep->next = NULL;
    POISON(keep->data, keep->size);
    keep->used = 0;
  }
  a->head = keep;
  a->last = NULL;
  a->grow = keep ? 2 * ARENA_CHUNK : ARENA_CHUNK;
}

int arena_depth(void) {
  return ta.depth;
}

void *arena_alloc(size_t n) {
  struct arena *a = &ta;
  return a->depth ? bump(a, n) : malloc(n);
}

void arena_free(void *p) {
  struct arena *a = &ta;
  if (!p) return;
  if (!a->depth) {
    free(p);
    return;
  }
  struct chunk *c = chunk_of(a, p);
  if (!c) {
    free(p); /* made before the scope, or by plain malloc */
    return;
  }
  if (p == a->last && c == a->head) { /* the latest block: give it back */
    size_t at = (size_t)((unsigned char *)p - c->data);
    POISON(c->data + at, c->used - at);
    c->used = at;
    a->last = NULL;
  }
}

int arena_owns(const void *p) {
  return p && ta.depth && chunk_of(&ta, p) != NULL;
}

char *arena_take(char *s) {
  return s && arena_owns(s) ? util_strdup(s) : s;
}

size_t arena_held(void) {
  size_t n = 0;
  for (const struct chunk *c = ta.head; c; c = c->next) n += c->size;
  return n;
}

void arena_install_cjson(void) {
  cJSON_Hooks hooks = {.malloc_fn = arena_alloc, .free_fn = arena_free};
  cJSON_InitHooks(&hooks);
}
