/* SPDX-License-Identifier: MIT */

/* The polkit decision with a fake bus: which questions are asked, what is
 * allowed or denied with which error, that every answer comes through the
 * re-run of its call and is used once, and that nothing leaks. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kasa-dbus.h"
#include "macro.h"
#include "polkit.h"
#include "tap.h"

/* The fake's stand-in for a method call; polkit.c only hands it back. */
typedef struct FakeCall {
        bool interactive;
        int refs;
        int resumed;
        int failed;
} FakeCall;

/* One open question. */
typedef struct FakeAsk {
        PolkitQuery *query;
        bool polkit;               /* CheckAuthorization, else the uid */
        char action[64];
        bool interactive;
        bool released;
} FakeAsk;

typedef struct Fake {
        FakeAsk asks[16];
        size_t n_asks;
        size_t n_released;
        int uid_error;             /* ask_uid fails now with this */
        int polkit_error;          /* ask_polkit fails now with this */
        int resume_error;
} Fake;

static Fake fake;

static sd_bus_message *as_msg(FakeCall *c) {
        return (sd_bus_message *) c;
}

static FakeCall *as_call(sd_bus_message *m) {
        return (FakeCall *) m;
}

static int fake_ask(PolkitQuery *q, bool polkit, const char *action, bool interactive, void **ret_pending) {
        FakeAsk *a;

        if (fake.n_asks >= ELEMENTSOF(fake.asks))
                return -ENOBUFS;
        a = &fake.asks[fake.n_asks++];
        *a = (FakeAsk) { .query = q, .polkit = polkit, .interactive = interactive };
        snprintf(a->action, sizeof a->action, "%s", action ?: "");
        *ret_pending = a;
        return 0;
}

static int fake_ask_uid(void *userdata, sd_bus_message *call, PolkitQuery *q, void **ret_pending) {
        return fake.uid_error ? fake.uid_error : fake_ask(q, false, NULL, false, ret_pending);
}

static int fake_ask_polkit(void *userdata, sd_bus_message *call, const char *action, bool interactive,
                           PolkitQuery *q, void **ret_pending) {
        return fake.polkit_error ? fake.polkit_error : fake_ask(q, true, action, interactive, ret_pending);
}

static void fake_release(void *userdata, void *pending) {
        FakeAsk *a = pending;

        ok(!a->released, "a handle is released once");
        a->released = true;
        fake.n_released++;
}

static int fake_resume(void *userdata, sd_bus_message *call) {
        as_call(call)->resumed++;
        return fake.resume_error;
}

static void fake_fail(void *userdata, sd_bus_message *call) {
        as_call(call)->failed++;
}

static bool fake_allow_interactive(void *userdata, sd_bus_message *call) {
        return as_call(call)->interactive;
}

static sd_bus_message *fake_ref(void *userdata, sd_bus_message *call) {
        as_call(call)->refs++;
        return call;
}

static void fake_unref(void *userdata, sd_bus_message *call) {
        as_call(call)->refs--;
}

static const PolkitOps fake_ops = {
        .ask_uid = fake_ask_uid,
        .ask_polkit = fake_ask_polkit,
        .release = fake_release,
        .resume = fake_resume,
        .fail = fake_fail,
        .allow_interactive = fake_allow_interactive,
        .ref = fake_ref,
        .unref = fake_unref,
};

static PolkitQueries *setup(void) {
        memset(&fake, 0, sizeof fake);
        return polkit_queries_new_with_ops(&fake_ops, NULL);
}

static FakeAsk *last_ask(void) {
        if (fake.n_asks == 0) {
                diag("no question was asked");
                exit(EXIT_FAILURE);
        }
        return &fake.asks[fake.n_asks - 1];
}

/* Checks call once more; returns what polkit_check returned, the error
 * name in *name (static storage) or NULL. */
static int check(PolkitQueries *pq, FakeCall *c, const char *action, const char **name, char *msg, size_t size) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        static char buf[128];
        int r = polkit_check(pq, as_msg(c), action, &e);

        snprintf(buf, sizeof buf, "%s", e.name ?: "");
        if (msg)
                snprintf(msg, size, "%s", e.message ?: "");
        if (name)
                *name = e.name ? buf : NULL;
        sd_bus_error_free(&e);
        return r;
}

static void test_root(void) {
        PolkitQueries *pq = setup();
        FakeCall c = { 0 };
        const char *name;

        diag("root");
        is_int(check(pq, &c, KASA_ACTION_SWITCH, &name, NULL, 0), 0, "root: the first run waits");
        ok(fake.n_asks == 1 && !last_ask()->polkit, "root: the bus is asked for the uid, nothing else");
        is_int(c.resumed, 0, "root: not re-run before the answer");
        is_int(check(pq, &c, KASA_ACTION_SWITCH, &name, NULL, 0), 0, "root: a run before the answer still waits");
        is_int(fake.n_asks, 1, "root: ...and asks nothing again");

        polkit_query_uid_answered(last_ask()->query, 0, 0);
        is_int(c.resumed, 1, "root: the answer re-runs the call");
        ok(last_ask()->released, "root: the uid question's handle is released");
        is_int(fake.n_asks, 1, "root: polkit is never asked");
        is_int(check(pq, &c, KASA_ACTION_SWITCH, &name, NULL, 0), 1, "root: the re-run is allowed");
        ok(!name, "root: no error set");
        is_int(c.refs, 0, "root: the call is unreferenced once answered");

        /* The answer was for that run only: the next call asks again. */
        is_int(check(pq, &c, KASA_ACTION_SWITCH, NULL, NULL, 0), 0, "root: a new call of the same message asks again");
        is_int(fake.n_asks, 2, "root: ...the bus, once more");
        polkit_queries_free(pq);
        is_int(c.refs, 0, "root: freeing with a question open unreferences the call");
        is_int(fake.n_released, 2, "root: ...and releases the open question");
}

static void test_user_allowed(void) {
        PolkitQueries *pq = setup();
        FakeCall c = { .interactive = true };

        diag("user, allowed");
        check(pq, &c, KASA_ACTION_MANAGE_DEVICES, NULL, NULL, 0);
        polkit_query_uid_answered(last_ask()->query, 0, 1000);
        is_int(c.resumed, 0, "user: not re-run after the uid only");
        ok(fake.n_asks == 2 && last_ask()->polkit, "user: then polkit is asked");
        is_str(last_ask()->action, KASA_ACTION_MANAGE_DEVICES, "user: about the method's action");
        ok(last_ask()->interactive, "user: interactive as the call allows");
        is_int(check(pq, &c, KASA_ACTION_MANAGE_DEVICES, NULL, NULL, 0), 0, "user: waits while polkit thinks");

        polkit_query_polkit_answered(last_ask()->query, NULL, true, false);
        is_int(c.resumed, 1, "user: polkit's answer re-runs the call");
        is_int(check(pq, &c, KASA_ACTION_MANAGE_DEVICES, NULL, NULL, 0), 1, "user: allowed when polkit says so");
        is_int(fake.n_released, 2, "user: both handles released");
        is_int(c.refs, 0, "user: the call is unreferenced");
        polkit_queries_free(pq);
}

static void test_user_denied(void) {
        PolkitQueries *pq = setup();
        FakeCall plain = { 0 }, inter = { .interactive = true };
        const char *name;
        char msg[256];
        int r;

        diag("user, denied");
        check(pq, &plain, KASA_ACTION_SWITCH, NULL, NULL, 0);
        check(pq, &inter, KASA_ACTION_SWITCH, NULL, NULL, 0);
        is_int(fake.n_asks, 2, "two calls: two questions, each its own");
        polkit_query_uid_answered(fake.asks[0].query, 0, 1000);
        polkit_query_uid_answered(fake.asks[1].query, 0, 1000);
        ok(!fake.asks[2].interactive && fake.asks[3].interactive, "each call's own interactive flag is passed");

        /* A challenge for a call that may not prompt: say that prompting would help. */
        polkit_query_polkit_answered(fake.asks[2].query, NULL, false, true);
        r = check(pq, &plain, KASA_ACTION_SWITCH, &name, msg, sizeof msg);
        ok(r < 0, "challenge, not interactive: denied");
        is_str(name, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED, "challenge, not interactive: the error");
        ok(strstr(msg, KASA_ACTION_SWITCH) != NULL, "the message names the action (%s)", msg);
        is_int(inter.resumed, 0, "the other call is not re-run by this answer");

        polkit_query_polkit_answered(fake.asks[3].query, NULL, false, false);
        r = check(pq, &inter, KASA_ACTION_SWITCH, &name, msg, sizeof msg);
        ok(r < 0, "no: denied");
        is_str(name, SD_BUS_ERROR_ACCESS_DENIED, "no: AccessDenied");
        ok(plain.refs == 0 && inter.refs == 0, "denied calls are unreferenced");
        polkit_queries_free(pq);
}

static void test_polkit_absent(void) {
        PolkitQueries *pq = setup();
        FakeCall c = { .interactive = true }, d = { 0 };
        const char *name;
        char msg[256];

        diag("polkit absent");
        check(pq, &c, KASA_ACTION_SWITCH, NULL, NULL, 0);
        polkit_query_uid_answered(last_ask()->query, 0, 1000);
        polkit_query_polkit_answered(last_ask()->query, "The name is not activatable", false, false);
        is_int(check(pq, &c, KASA_ACTION_SWITCH, &name, msg, sizeof msg) < 0, 1, "absent: denied");
        is_str(name, SD_BUS_ERROR_ACCESS_DENIED, "absent: AccessDenied");
        ok(strstr(msg, "polkit could not be asked") && strstr(msg, "The name is not activatable"),
           "absent: the message says why (%s)", msg);

        /* Not even sending the question works: the same, through the re-run. */
        fake.polkit_error = -ENOTCONN;
        check(pq, &d, KASA_ACTION_SWITCH, NULL, NULL, 0);
        polkit_query_uid_answered(last_ask()->query, 0, 1000);
        is_int(d.resumed, 1, "cannot send: re-run at once");
        is_int(check(pq, &d, KASA_ACTION_SWITCH, &name, msg, sizeof msg) < 0, 1, "cannot send: denied");
        ok(strstr(msg, "polkit could not be asked") != NULL, "cannot send: says so (%s)", msg);

        /* Root does not need polkit. */
        check(pq, &d, KASA_ACTION_SWITCH, NULL, NULL, 0);
        polkit_query_uid_answered(last_ask()->query, 0, 0);
        is_int(check(pq, &d, KASA_ACTION_SWITCH, NULL, NULL, 0), 1, "root is allowed without polkit");
        ok(c.refs == 0 && d.refs == 0, "absent: calls unreferenced");
        polkit_queries_free(pq);
}

static void test_uid_unknown(void) {
        PolkitQueries *pq = setup();
        FakeCall c = { 0 }, d = { 0 };

        diag("uid unknown");
        /* The bus could not say who called: that is polkit's business, never an allow. */
        check(pq, &c, KASA_ACTION_SWITCH, NULL, NULL, 0);
        polkit_query_uid_answered(last_ask()->query, -ENXIO, 0);
        ok(last_ask()->polkit, "uid lookup failed: polkit is asked");
        is_int(c.resumed, 0, "uid lookup failed: not allowed on its own");

        fake.uid_error = -ENOMEM;
        is_int(check(pq, &d, KASA_ACTION_SWITCH, NULL, NULL, 0), 0, "uid question not sent: waits");
        ok(last_ask()->polkit && last_ask()->query != fake.asks[1].query, "uid question not sent: polkit is asked");
        polkit_query_polkit_answered(last_ask()->query, NULL, true, false);
        is_int(check(pq, &d, KASA_ACTION_SWITCH, NULL, NULL, 0), 1, "...and decides");
        polkit_queries_free(pq);
        is_int(c.refs, 0, "uid unknown: the pending call is unreferenced at free");
}

static void test_resume_fails(void) {
        PolkitQueries *pq = setup();
        FakeCall c = { 0 };

        diag("resume fails");
        fake.resume_error = -ENOMEM;
        check(pq, &c, KASA_ACTION_SWITCH, NULL, NULL, 0);
        polkit_query_uid_answered(last_ask()->query, 0, 0);
        is_int(c.failed, 1, "the call gets a failure reply when it cannot run again");
        is_int(c.refs, 0, "...and is dropped");
        fake.resume_error = 0;
        is_int(check(pq, &c, KASA_ACTION_SWITCH, NULL, NULL, 0), 0, "nothing was kept for it");
        polkit_queries_free(pq);
}

static void test_forget(void) {
        PolkitQueries *pq = setup();
        FakeCall c = { 0 }, d = { 0 };

        diag("forget");
        check(pq, &c, KASA_ACTION_SWITCH, NULL, NULL, 0);
        polkit_forget(pq, as_msg(&c));
        is_int(c.refs, 1, "forget keeps a call still waiting (it is re-run when the answer comes)");
        polkit_query_uid_answered(last_ask()->query, 0, 0);
        is_int(c.resumed, 1, "...and the answer still re-runs it");
        polkit_forget(pq, as_msg(&c));
        is_int(c.refs, 0, "forget drops an answered call");
        polkit_forget(pq, as_msg(&d));
        ok(true, "forget of an unknown call does nothing");
        polkit_queries_free(pq);
}

int main(void) {
        test_root();
        test_user_allowed();
        test_user_denied();
        test_polkit_absent();
        test_uid_unknown();
        test_resume_fails();
        test_forget();
        return done_testing();
}
