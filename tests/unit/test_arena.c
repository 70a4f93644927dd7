/* test_arena.c - the per-thread arena behind cJSON (issue 14): scopes,
 * nesting, foreign frees, reset, large blocks, copies out of a scope, other
 * threads, and a parsed SES event that outlives the scope it was made in.
 * The runner installed the cJSON hooks, as the binary does. */
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "ses.h"
#include "unit.h"

static int t_scope(void) {
  ASSERT_INT_EQ(arena_depth(), 0);
  void *outside = arena_alloc(40); /* malloc */
  ASSERT_TRUE(outside != NULL);
  ASSERT_INT_EQ(arena_owns(outside), 0);
  arena_begin();
  ASSERT_INT_EQ(arena_depth(), 1);
  unsigned char *p = arena_alloc(40);
  ASSERT_TRUE(p != NULL);
  ASSERT_INT_EQ(arena_owns(p), 1);
  ASSERT_INT_EQ((uintptr_t)p % 16, 0);
  memset(p, 0xab, 40);
  ASSERT_INT_EQ(arena_owns(outside), 0);
  arena_end();
  ASSERT_INT_EQ(arena_depth(), 0);
  ASSERT_INT_EQ(arena_owns(p), 0);
  arena_free(outside); /* outside a scope: free */
  arena_end();         /* no scope open: nothing happens */
  ASSERT_INT_EQ(arena_depth(), 0);
  return 0;
}

/* An inner scope frees nothing: the outer one's blocks stay valid. */
static int t_nested(void) {
  arena_begin();
  char *outer = arena_alloc(16);
  strcpy(outer, "outer");
  arena_begin();
  ASSERT_INT_EQ(arena_depth(), 2);
  char *inner = arena_alloc(16);
  strcpy(inner, "inner");
  arena_end();
  ASSERT_INT_EQ(arena_depth(), 1);
  ASSERT_INT_EQ(arena_owns(outer), 1);
  ASSERT_INT_EQ(arena_owns(inner), 1);
  ASSERT_STR_EQ(outer, "outer");
  ASSERT_STR_EQ(inner, "inner");
  arena_end();
  ASSERT_INT_EQ(arena_depth(), 0);
  return 0;
}

/* A block malloc'ed before the scope and freed in it is really freed (under
 * ASan a leak otherwise); the arena's own blocks are not given to free. */
static int t_foreign_free(void) {
  char *before = malloc(64);
  ASSERT_TRUE(before != NULL);
  arena_begin();
  char *mine = arena_alloc(64);
  ASSERT_INT_EQ(arena_owns(before), 0);
  arena_free(before);
  char *other = arena_alloc(32);
  arena_free(mine); /* not the latest: left for arena_end */
  ASSERT_INT_EQ(arena_owns(mine), 1);
  arena_free(NULL);
  arena_end();
  (void)other;
  return 0;
}

/* The latest block freed is given back: the next takes its place. */
static int t_give_back(void) {
  arena_begin();
  void *a = arena_alloc(100);
  arena_free(a);
  void *b = arena_alloc(100);
  ASSERT_TRUE(a == b);
  arena_end();
  return 0;
}

/* Past one chunk the arena grows; arena_end keeps one chunk and reuses it. */
static int t_reset(void) {
  arena_begin();
  void *first = arena_alloc(24);
  for (int i = 0; i < 400; i++) {
    char *p = arena_alloc(1000);
    ASSERT_TRUE(p != NULL);
    memset(p, i, 1000);
  }
  ASSERT_TRUE(arena_held() > ARENA_CHUNK);
  arena_end();
  ASSERT_INT_EQ(arena_held(), ARENA_CHUNK);
  arena_begin();
  void *again = arena_alloc(24);
  ASSERT_TRUE(again == first); /* the kept chunk, from its start */
  ASSERT_INT_EQ(arena_held(), ARENA_CHUNK);
  arena_end();
  ASSERT_INT_EQ(arena_held(), ARENA_CHUNK);
  return 0;
}

/* A block larger than a chunk gets its own, freed at arena_end; small
 * blocks after it still come from the kept chunk. */
static int t_big(void) {
  arena_begin();
  char *small = arena_alloc(8);
  size_t n = 3 * 1024 * 1024;
  char *big = arena_alloc(n);
  ASSERT_TRUE(big != NULL);
  ASSERT_INT_EQ(arena_owns(big), 1);
  ASSERT_INT_EQ(arena_owns(big + n - 1), 1);
  memset(big, 'x', n);
  char *after = arena_alloc(8);
  ASSERT_INT_EQ(arena_owns(after), 1);
  ASSERT_TRUE(after > small && after < small + ARENA_CHUNK);
  ASSERT_TRUE(arena_held() >= ARENA_CHUNK + n);
  arena_free(big);
  arena_end();
  ASSERT_INT_EQ(arena_held(), ARENA_CHUNK);
  return 0;
}

/* arena_take copies a string out of the scope and leaves others alone. */
static int t_take(void) {
  char *mine = strdup("kept");
  ASSERT_TRUE(arena_take(mine) == mine);
  arena_begin();
  ASSERT_TRUE(arena_take(mine) == mine);
  char *s = arena_alloc(8);
  strcpy(s, "scoped");
  char *kept = arena_take(s);
  ASSERT_TRUE(kept != NULL && kept != s);
  ASSERT_INT_EQ(arena_owns(kept), 0);
  ASSERT_TRUE(arena_take(NULL) == NULL);
  arena_end();
  ASSERT_STR_EQ(kept, "scoped");
  free(kept);
  free(mine);
  return 0;
}

/* cJSON goes through the arena inside a scope only, prints included. */
static int t_cjson(void) {
  const char *doc = "{\"a\":[1,2,{\"b\":\"text\"}],\"c\":\"d\"}";
  cJSON *plain = cJSON_Parse(doc);
  ASSERT_TRUE(plain != NULL);
  ASSERT_INT_EQ(arena_owns(plain), 0);
  arena_begin();
  cJSON *root = cJSON_Parse(doc);
  ASSERT_TRUE(root != NULL);
  ASSERT_INT_EQ(arena_owns(root), 1);
  ASSERT_INT_EQ(arena_owns(root->child->string), 1);
  char *text = cJSON_PrintUnformatted(root);
  ASSERT_INT_EQ(arena_owns(text), 1);
  char *kept = arena_take(text);
  cJSON_free(text);
  cJSON_Delete(root);
  cJSON_Delete(plain); /* made before the scope: really freed */
  arena_end();
  ASSERT_STR_EQ(kept, doc);
  free(kept);
  return 0;
}

static void *other_thread(void *arg) {
  void **out = arg;
  arena_begin();
  out[0] = arena_alloc(32);
  out[1] = (void *)(intptr_t)arena_owns(out[0]);
  arena_end();
  return NULL;
}

/* Scopes are per thread: another thread's scope is not this one's. */
static int t_threads(void) {
  void *res[2] = {0};
  arena_begin();
  pthread_t t;
  ASSERT_INT_EQ(pthread_create(&t, NULL, other_thread, res), 0);
  pthread_join(t, NULL);
  ASSERT_INT_EQ((intptr_t)res[1], 1);
  ASSERT_INT_EQ(arena_owns(res[0]), 0);
  arena_end();
  return 0;
}

/* An event parsed inside an outer scope (as import does) owns malloc'ed
 * strings that stay whole after the scope, equal to one parsed outside. */
static int t_event_outlives_scope(void) {
  size_t len;
  char *json = unit_read_fixture("ses/ses-event-bounce-awsdocs.json", &len);
  ses_event *plain = NULL, *scoped = NULL;
  const char *why = NULL;
  ASSERT_INT_EQ(ses_parse(json, len, NULL, &plain, &why), 0);
  arena_begin();
  ASSERT_INT_EQ(ses_parse(json, len, NULL, &scoped, &why), 0);
  ASSERT_INT_EQ(arena_owns(scoped->raw), 0);
  ASSERT_INT_EQ(arena_owns(scoped->bounced_recipients), 0);
  /* a later scope reuses the chunk: overwrite it */
  arena_end();
  arena_begin();
  memset(arena_alloc(ARENA_CHUNK / 8), 0, ARENA_CHUNK / 8);
  arena_end();
  ASSERT_STR_EQ(scoped->raw, plain->raw);
  ASSERT_INT_EQ(scoped->raw_len, plain->raw_len);
  ASSERT_STR_EQ(scoped->bounced_recipients, plain->bounced_recipients);
  ASSERT_STR_EQ(scoped->message_id, plain->message_id);
  ses_event_free(scoped);
  ses_event_free(plain);
  free(json);
  return 0;
}

const struct unit_test arena_tests[] = {{"scope", t_scope},
                                        {"nested", t_nested},
                                        {"foreign_free", t_foreign_free},
                                        {"give_back", t_give_back},
                                        {"reset", t_reset},
                                        {"big", t_big},
                                        {"take", t_take},
                                        {"cjson", t_cjson},
                                        {"threads", t_threads},
                                        {"event_outlives_scope", t_event_outlives_scope},
                                        {0}};
