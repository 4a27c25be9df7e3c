/*
 * Sanitizer defaults of giro's ThreadSanitizer build (linked into build/tsan/giro
 * only).  As for the ASan build (options.c), TSAN_OPTIONS still overrides one
 * flag at a time, and every giro a spec spawns behaves the same.
 *
 * exitcode=23: a data race report must never look like one of giro's own exit
 *   codes (the specs' helper fails a child that exits 23 by name).
 * halt_on_error=1: the first race ends the process, so it cannot be missed.
 * report_signal_unsafe=0: giro's signal handler only sets a flag (not a race).
 * second_deadlock_stack=1: a lock-order report shows where both locks were taken.
 */
const char *__tsan_default_options(void);

const char *__tsan_default_options(void)
{
  return "exitcode=23:halt_on_error=1:report_signal_unsafe=0:second_deadlock_stack=1";
}
