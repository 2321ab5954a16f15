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
        const char *sender;        /* its unique name */
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
        FakeAsk asks[256];
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

static const char *fake_sender(void *userdata, sd_bus_message *call) {
        return as_call(call)->sender;
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
        .sender = fake_sender,
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

#define BRIDGE_UID 990

static const char *const all_actions[] = {
        KASA_ACTION_SWITCH,         KASA_ACTION_MANAGE_DEVICES, KASA_ACTION_MANAGE_SCHEDULES,
        KASA_ACTION_MANAGE_TARIFFS, KASA_ACTION_MANAGE_ACCESS,  KASA_ACTION_ERASE_DATA,
};

/* A token of role, bound to sender; returns its id in id. */
static void bind_token(Access *a, const char *name, AccessRole role, const char *sender, char *id) {
        char secret[ACCESS_SECRET_MAX];
        const AccessToken *t;
        AccessToken *n;
        uint64_t retry;

        if (access_token_new(a, name, role, 0, &n, secret) < 0 || access_add(a, n) < 0 ||
            access_bind(a, sender, BRIDGE_UID, secret, &t, &retry) < 0) {
                diag("cannot make token %s", name);
                exit(EXIT_FAILURE);
        }
        snprintf(id, ACCESS_ID_MAX, "%s", t->id);
}

/* The whole question for one call of uid; returns polkit_check's verdict. */
static int ask(PolkitQueries *pq, FakeCall *c, uid_t uid, const char *action, const char **name, char *msg,
               size_t size) {
        check(pq, c, action, NULL, NULL, 0);
        polkit_query_uid_answered(last_ask()->query, 0, uid);
        return check(pq, c, action, name, msg, size);
}

static void test_bridge(void) {
        PolkitQueries *pq = setup();
        Access *a = access_new(NULL, NULL);
        FakeCall none = { .sender = ":1.10", .interactive = true }, viewer = { .sender = ":1.11" },
                 op = { .sender = ":1.12" }, admin = { .sender = ":1.13" }, plain = { .sender = ":1.14" };
        char vid[ACCESS_ID_MAX], oid[ACCESS_ID_MAX], aid[ACCESS_ID_MAX], pid[ACCESS_ID_MAX];
        const char *name;
        char msg[256];
        int r;

        diag("bridge");
        access_set_bridge_uid(a, true, BRIDGE_UID);
        polkit_queries_set_access(pq, a);
        bind_token(a, "viewer", ACCESS_ROLE_VIEWER, viewer.sender, vid);
        bind_token(a, "op", ACCESS_ROLE_OPERATOR, op.sender, oid);
        bind_token(a, "admin", ACCESS_ROLE_ADMIN, admin.sender, aid);

        /* No backdoor: without a token, nothing a plain user needs polkit
         * for, whatever polkit would say, which is never asked. */
        for (size_t i = 0; i < ELEMENTSOF(all_actions); i++) {
                size_t asks = fake.n_asks;
                r = ask(pq, &none, BRIDGE_UID, all_actions[i], &name, msg, sizeof msg);
                ok(r < 0 && name && strcmp(name, SD_BUS_ERROR_ACCESS_DENIED) == 0 &&
                   strstr(msg, "no API token bound to this connection"),
                   "bridge without a token: %s denied (%s)", all_actions[i], msg);
                is_int(fake.n_asks - asks, 1, "...polkit is not asked, only the uid");
                is_int(none.resumed, (int) i + 1, "...through the re-run");
        }

        for (size_t i = 0; i < ELEMENTSOF(all_actions); i++) {
                bool operator_may = i < 4;
                r = ask(pq, &viewer, BRIDGE_UID, all_actions[i], &name, msg, sizeof msg);
                ok(r < 0 && strstr(msg, "role viewer does not allow"), "viewer: %s denied (%s)", all_actions[i], msg);
                r = ask(pq, &op, BRIDGE_UID, all_actions[i], &name, msg, sizeof msg);
                ok(operator_may ? r == 1 : r < 0 && strstr(msg, "role operator does not allow"), "operator: %s %s",
                   all_actions[i], operator_may ? "allowed" : "denied");
                is_int(ask(pq, &admin, BRIDGE_UID, all_actions[i], NULL, NULL, 0), 1, "admin: %s allowed",
                       all_actions[i]);
        }

        /* Revoked: denied, also when it happens while the uid is asked. */
        is_int(access_remove(a, oid), 1, "the operator's token is revoked");
        r = ask(pq, &op, BRIDGE_UID, KASA_ACTION_SWITCH, &name, msg, sizeof msg);
        ok(r < 0 && strstr(msg, "no API token"), "revoked: switching denied (%s)", msg);
        check(pq, &admin, KASA_ACTION_SWITCH, NULL, NULL, 0);
        polkit_query_uid_answered(last_ask()->query, 0, BRIDGE_UID);
        access_remove(a, aid);
        r = check(pq, &admin, KASA_ACTION_SWITCH, &name, msg, sizeof msg);
        ok(r < 0 && strstr(msg, "no API token"), "revoked between the uid and the re-run: denied (%s)", msg);

        /* A token means nothing to other users: polkit decides for them. */
        bind_token(a, "plain", ACCESS_ROLE_ADMIN, plain.sender, pid);
        check(pq, &plain, KASA_ACTION_SWITCH, NULL, NULL, 0);
        polkit_query_uid_answered(last_ask()->query, 0, 1000);
        ok(last_ask()->polkit, "another uid with a token bound: polkit is asked");
        polkit_query_polkit_answered(last_ask()->query, NULL, false, false);
        ok(check(pq, &plain, KASA_ACTION_SWITCH, NULL, NULL, 0) < 0, "...and its no stands");
        is_int(ask(pq, &plain, 0, KASA_ACTION_SWITCH, NULL, NULL, 0), 1, "root is root");

        /* While there is a bridge, an unknown uid might be it. */
        size_t asks = fake.n_asks;
        check(pq, &none, KASA_ACTION_SWITCH, NULL, NULL, 0);
        polkit_query_uid_answered(last_ask()->query, -ENXIO, 0);
        r = check(pq, &none, KASA_ACTION_SWITCH, &name, msg, sizeof msg);
        ok(r < 0 && strstr(msg, "uid is unknown"), "uid unknown with a bridge: denied (%s)", msg);
        is_int(fake.n_asks - asks, 1, "...without asking polkit");
        fake.uid_error = -ENOMEM;
        r = check(pq, &none, KASA_ACTION_SWITCH, NULL, NULL, 0);
        r = check(pq, &none, KASA_ACTION_SWITCH, &name, msg, sizeof msg);
        ok(r < 0 && strstr(msg, "uid is unknown"), "uid question not sent, with a bridge: denied (%s)", msg);
        fake.uid_error = 0;

        /* No bridge user: the bridge's uid is anybody's. */
        access_set_bridge_uid(a, false, 0);
        check(pq, &viewer, KASA_ACTION_SWITCH, NULL, NULL, 0);
        polkit_query_uid_answered(last_ask()->query, 0, BRIDGE_UID);
        ok(last_ask()->polkit, "no bridge: its uid goes to polkit like any");
        polkit_query_polkit_answered(last_ask()->query, NULL, true, false);
        is_int(check(pq, &viewer, KASA_ACTION_SWITCH, NULL, NULL, 0), 1, "...which decides");

        ok(none.refs == 0 && viewer.refs == 0 && op.refs == 0 && admin.refs == 0 && plain.refs == 0,
           "bridge: every call unreferenced");
        polkit_queries_free(pq);
        access_free(a);
}

static void test_caller_uid(void) {
        PolkitQueries *pq = setup();
        sd_bus_error e = SD_BUS_ERROR_NULL;
        FakeCall c = { .sender = ":1.20" };
        uid_t uid = 0;

        diag("caller uid");
        is_int(polkit_caller_uid(pq, as_msg(&c), &uid, &e), 0, "the first run waits");
        polkit_query_uid_answered(last_ask()->query, 0, 1234);
        is_int(fake.n_asks, 1, "only the uid is asked");
        is_int(c.resumed, 1, "the answer re-runs the call");
        is_int(polkit_caller_uid(pq, as_msg(&c), &uid, &e), 1, "the re-run has the uid");
        is_int(uid, 1234, "...1234");

        polkit_caller_uid(pq, as_msg(&c), &uid, &e);
        polkit_query_uid_answered(last_ask()->query, -ENXIO, 0);
        ok(polkit_caller_uid(pq, as_msg(&c), &uid, &e) < 0 && sd_bus_error_is_set(&e),
           "the bus cannot say: an error (%s)", e.message ?: "");
        sd_bus_error_free(&e);
        is_int(c.refs, 0, "the call is unreferenced");
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
        test_bridge();
        test_caller_uid();
        return done_testing();
}
