/*
 * Sanitizer defaults of giro's ASan+UBSan build (linked into build/asan/giro
 * only; the release binary has no sanitizer).  The runtimes read these before
 * ASAN_OPTIONS, LSAN_OPTIONS and UBSAN_OPTIONS, so a variable set by a user or a
 * test harness still overrides one flag at a time, and every process of the
 * sanitized build -- the spec runner and each giro it spawns -- gets the same
 * behaviour whatever environment it inherits.
 *
 * exitcode=23: a sanitizer death must never look like one of giro's own exit
 *   codes (1 input rejected, 2 usage, 3 environment); the default 1 did.
 * intercept_tls_get_addr=0: GCC 12's libasan interceptor of __tls_get_addr
 *   misreads the dynamic TLS blocks of libraries loaded with dlopen (libpq's
 *   dependency chain, loaded by the PostgreSQL driver), and LeakSanitizer's
 *   tracer then dies with SIGSEGV at exit ("Tracer caught signal 11 ...
 *   LeakSanitizer has encountered a fatal error"), google/sanitizers#1322.
 *   Without the interceptor LeakSanitizer scans static TLS and thread stacks
 *   as before; giro keeps no heap pointers only in dynamic TLS.
 */
const char *__asan_default_options(void);
const char *__lsan_default_options(void);
const char *__ubsan_default_options(void);

const char *__asan_default_options(void)
{
  return "detect_leaks=1:abort_on_error=0:exitcode=23:intercept_tls_get_addr=0";
}

const char *__lsan_default_options(void)
{
  return "exitcode=23:intercept_tls_get_addr=0";
}

const char *__ubsan_default_options(void)
{
  return "print_stacktrace=1:halt_on_error=1:exitcode=23";
}
