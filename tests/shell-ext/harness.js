// SPDX-License-Identifier: MIT
//
// What the gjs tests share: TAP output, waiting on the main context, and
// requests to the Python side that runs the bus harness (test-model.py):
// a line "@@ <json>" on stdout, answered by one JSON line on stdin.
import Gio from 'gi://Gio';
import GLib from 'gi://GLib';

let n = 0;
let failed = 0;

export function ok(cond, name, diag = null) {
    n++;
    print(`${cond ? 'ok' : 'not ok'} ${n} - ${name}`);
    if (!cond) {
        failed++;
        for (const line of String(diag ?? '').split('\n').filter(l => l))
            print(`# ${line}`);
    }
    return cond;
}

export function eq(got, want, name) {
    const g = JSON.stringify(got), w = JSON.stringify(want);
    return ok(g === w, name, `got ${g}, want ${w}`);
}

export function done() {
    print(`1..${n}`);
    return failed || n === 0 ? 1 : 0;
}

/** Resolves after `seconds`, the main loop running meanwhile. */
export function sleep(seconds) {
    return new Promise(resolve => GLib.timeout_add(GLib.PRIORITY_DEFAULT, seconds * 1000, () => {
        resolve();
        return GLib.SOURCE_REMOVE;
    }));
}

/** Resolves true once pred() is, false after `timeout` seconds. */
export async function waitFor(pred, timeout = 20) {
    const end = GLib.get_monotonic_time() + timeout * 1e6;
    while (!pred()) {
        if (GLib.get_monotonic_time() > end)
            return false;
        await sleep(0.05);
    }
    return true;
}

export const iterate = sleep;

/** {ok, value} or {ok: false, error} of a promise. */
export async function settle(promise) {
    try {
        return {ok: true, value: await promise};
    } catch (error) {
        return {ok: false, error};
    }
}

const stdin = new Gio.DataInputStream({base_stream: new Gio.UnixInputStream({fd: 0})});

export function request(req) {
    print(`@@ ${JSON.stringify(req)}`);
    const [line] = stdin.read_line_utf8(null);
    if (line === null)
        throw new Error('the harness closed stdin');
    return JSON.parse(line);
}

export function connect(address) {
    return Gio.DBusConnection.new_for_address_sync(address,
        Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION,
        null, null);
}

export function busCall(conn, path, iface, method, args = null, type = null) {
    return conn.call_sync('org.kasamond.Kasa1', path, iface, method, args, type ? new GLib.VariantType(type) : null,
        Gio.DBusCallFlags.NONE, 20000, null).recursiveUnpack();
}

export function getProp(conn, path, iface, prop) {
    return busCall(conn, path, 'org.freedesktop.DBus.Properties', 'Get', new GLib.Variant('(ss)', [iface, prop]))[0];
}
