/*
 * A deliberate leak, linked only into build/asan/giro-leak by `.ci/test.sh`'s
 * self-check: it proves that a leak in any giro process (the spec runner or a
 * giro it spawns) fails the test run by name.  Never part of a real build.
 */
#include <stdlib.h>
#include <string.h>

static void giro_test_leak(void) __attribute__((constructor, noinline));

static void giro_test_leak(void)
{
  char *volatile block = malloc(47);
  if (block) memset(block, 'L', 47);
  block = NULL;
}
