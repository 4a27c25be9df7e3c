/*
 * giro.xml's concurrent XSD check for the writer: while a document is being
 * written to its file, a second thread validates the same bytes.
 *
 * The writer hands every buffer it flushes to xml_check_put, which copies it
 * into a bounded queue (at most QUEUE_BYTES waiting: the writer waits when the
 * checker falls behind, so memory stays flat).  The thread runs the very
 * validation xml.validate runs (xml_vjob_run: giro's push parser with
 * libxml2's XSD SAX plug), its input pulled from the queue, so the findings,
 * their wording and their lines are those of validating the file read back.
 * The schema is parsed before the thread starts, in the calling thread.
 * xml_check_finish sends the end of the document, joins the thread and pushes
 * the result; xml_check_free (abort, __gc) stops and joins it: no thread ever
 * outlives its writer.  The thread never touches the Lua state, and it blocks
 * every signal: SIGINT/SIGTERM keep going to the main thread, whose blocked
 * calls they must interrupt (giro.fs installs its handlers without SA_RESTART).
 */
#include <pthread.h>
#include <signal.h>
#include "xml/xml.h"

#define QUEUE_BYTES (16 * CHUNK)

typedef struct chunk {
    struct chunk *next;
    size_t len, off;
    char data[];
} chunk;

struct xml_check {
    xml_vjob job;
    char *label;                /* for messages */
    int loaded;                 /* the schema loaded: the thread runs */
    int running;                /* a thread to join */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t more;        /* the queue got data, the end, or stop */
    pthread_cond_t room;        /* the queue has room, or the thread is done */
    chunk *head, *tail;
    size_t queued;
    int eof, stop, done, oom;   /* done: the thread no longer reads */
};

/* pthread_mutex_lock/unlock and the condition calls fail only on a programming
 * error (an uninitialised or foreign mutex): checked, and fatal. */
static void must(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "giro.xml: %s: %s\n", what, strerror(rc));
        abort();
    }
}

static void lock(xml_check *c) { must(pthread_mutex_lock(&c->mu), "pthread_mutex_lock"); }
static void unlock(xml_check *c) { must(pthread_mutex_unlock(&c->mu), "pthread_mutex_unlock"); }

/* The thread's source: up to max bytes of the queue; 0 at the end, -1 on stop. */
static long pull(void *ud, char *dst, size_t max)
{
    xml_check *c = ud;
    lock(c);
    while (c->head == NULL && !c->eof && !c->stop)
        must(pthread_cond_wait(&c->more, &c->mu), "pthread_cond_wait");
    long n;
    if (c->stop) {
        n = -1;
    } else if (c->head == NULL) {
        n = 0;
    } else {
        chunk *h = c->head;
        size_t k = h->len - h->off;
        if (k > max)
            k = max;
        memcpy(dst, h->data + h->off, k);
        h->off += k;
        if (h->off == h->len) {
            c->head = h->next;
            if (c->head == NULL)
                c->tail = NULL;
            c->queued -= h->len;
            free(h);
            must(pthread_cond_signal(&c->room), "pthread_cond_signal");
        }
        n = (long)k;
    }
    unlock(c);
    return n;
}

static void *run(void *ud)
{
    xml_check *c = ud;
    /* libxml2's generic error channel is per thread: quiet here too */
    xmlSetGenericErrorFunc(NULL, xml_quiet);
    xml_vjob_run(&c->job);
    lock(c);
    c->done = 1;                /* a writer waiting for room must not wait for us */
    must(pthread_cond_broadcast(&c->room), "pthread_cond_broadcast");
    unlock(c);
    return NULL;
}

xml_check *xml_check_start(const schema_spec *s, const char *label, char *msg, size_t msglen)
{
    xml_check *c = calloc(1, sizeof *c);
    if (c == NULL) {
        snprintf(msg, msglen, "out of memory");
        return NULL;
    }
    int rc;
    if ((rc = pthread_mutex_init(&c->mu, NULL)) != 0) {
        free(c);
        snprintf(msg, msglen, "cannot start the XSD check: %s", strerror(rc));
        return NULL;
    }
    if ((rc = pthread_cond_init(&c->more, NULL)) != 0) {
        must(pthread_mutex_destroy(&c->mu), "pthread_mutex_destroy");
        free(c);
        snprintf(msg, msglen, "cannot start the XSD check: %s", strerror(rc));
        return NULL;
    }
    if ((rc = pthread_cond_init(&c->room, NULL)) != 0) {
        must(pthread_cond_destroy(&c->more), "pthread_cond_destroy");
        must(pthread_mutex_destroy(&c->mu), "pthread_mutex_destroy");
        free(c);
        snprintf(msg, msglen, "cannot start the XSD check: %s", strerror(rc));
        return NULL;
    }
    c->job.live = 1;
    c->label = strdup(label);
    if (c->label == NULL || px_open_pull(&c->job.p, pull, c, label) != 0) {
        xml_check_free(c);
        snprintf(msg, msglen, "out of memory");
        return NULL;
    }
    c->job.p.queue = 0;
    /* a schema that does not load is reported by xml_check_finish, as commit did */
    if (xml_vjob_load(&c->job, s) == 0) {
        c->loaded = 1;
        sigset_t all, old;
        sigfillset(&all);
        if ((rc = pthread_sigmask(SIG_SETMASK, &all, &old)) == 0) {
            rc = pthread_create(&c->thread, NULL, run, c);   /* the thread inherits the mask */
            int rc2 = pthread_sigmask(SIG_SETMASK, &old, NULL);
            if (rc == 0 && rc2 != 0) {
                c->running = 1;         /* joined by xml_check_free */
                rc = rc2;
            }
        }
        if (rc != 0) {
            xml_check_free(c);
            snprintf(msg, msglen, "cannot start the XSD check: %s", strerror(rc));
            return NULL;
        }
        c->running = 1;
    } else {
        /* named after the schema, as xml.validate names it */
        free(c->label);
        c->label = strdup(s->xsd != NULL ? s->xsd : "<xsd>");
        if (c->label == NULL) {
            xml_check_free(c);
            snprintf(msg, msglen, "out of memory");
            return NULL;
        }
    }
    return c;
}

void xml_check_put(xml_check *c, const char *s, size_t n)
{
    if (c == NULL || n == 0 || !c->loaded)
        return;
    lock(c);
    while (c->queued > 0 && c->queued + n > QUEUE_BYTES && !c->done)
        must(pthread_cond_wait(&c->room, &c->mu), "pthread_cond_wait");
    int skip = c->done || c->oom;   /* the check has its answer (a fatal error): no more input */
    unlock(c);
    if (skip)
        return;
    chunk *k = malloc(sizeof *k + n);
    if (k == NULL) {
        lock(c);
        c->oom = 1;
        unlock(c);
        return;
    }
    k->next = NULL;
    k->len = n;
    k->off = 0;
    memcpy(k->data, s, n);
    lock(c);
    if (c->tail != NULL)
        c->tail->next = k;
    else
        c->head = k;
    c->tail = k;
    c->queued += n;
    must(pthread_cond_signal(&c->more), "pthread_cond_signal");
    unlock(c);
}

/* Tell the thread the input has ended (or, with stop, that it must give up). */
static void end_input(xml_check *c, int stop)
{
    if (!c->running)
        return;
    lock(c);
    if (stop)
        c->stop = 1;
    else
        c->eof = 1;
    must(pthread_cond_broadcast(&c->more), "pthread_cond_broadcast");
    unlock(c);
}

/* End (or stop) the input and wait for the thread. */
static void join(xml_check *c, int stop)
{
    if (!c->running)
        return;
    end_input(c, stop);
    must(pthread_join(c->thread, NULL), "pthread_join");
    c->running = 0;
}

void xml_check_eof(xml_check *c)
{
    end_input(c, 0);
}

int xml_check_finish(lua_State *L, xml_check *c)
{
    if (c->oom) {
        join(c, 1);
        lua_pushnil(L);
        lua_pushfstring(L, "%s: out of memory", c->label);
        return 2;
    }
    join(c, 0);
    return xml_push_result(L, &c->job.p, c->label);
}

void xml_check_free(xml_check *c)
{
    if (c == NULL)
        return;
    join(c, 1);
    while (c->head != NULL) {
        chunk *k = c->head;
        c->head = k->next;
        free(k);
    }
    xml_vjob_free(&c->job);
    must(pthread_cond_destroy(&c->room), "pthread_cond_destroy");
    must(pthread_cond_destroy(&c->more), "pthread_cond_destroy");
    must(pthread_mutex_destroy(&c->mu), "pthread_mutex_destroy");
    free(c->label);
    free(c);
}
