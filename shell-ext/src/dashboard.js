// SPDX-License-Identifier: MIT
//
// The bridge's dashboard, when kasamond-bridge is installed: its address
// is the one its socket unit listens on.
import Gio from 'gi://Gio';
import GLib from 'gi://GLib';

export const SOCKET_UNIT = 'kasamond-bridge.socket';

// systemd's system unit search path, most important first.
export const UNIT_DIRS = ['/etc/systemd/system', '/run/systemd/system', '/usr/local/lib/systemd/system',
    '/usr/lib/systemd/system', '/lib/systemd/system'];

/**
 * ListenStream= values of a unit file's [Socket] section applied to
 * `values` (an empty assignment resets the list, as systemd does).
 */
export function applyListenStream(text, values = []) {
    let section = '';
    for (let line of text.split('\n')) {
        line = line.trim();
        if (line.startsWith('[')) {
            section = line;
            continue;
        }
        const m = /^ListenStream\s*=\s*(.*)$/.exec(line);
        if (section !== '[Socket]' || !m)
            continue;
        if (m[1] === '')
            values = [];
        else
            values.push(m[1]);
    }
    return values;
}

/** The dashboard's URL for a ListenStream= value; null for non-TCP ones. */
export function urlForListen(listen) {
    let m = /^(\d+)$/.exec(listen);
    if (m)
        return `http://127.0.0.1:${m[1]}/`;
    m = /^\[([0-9a-fA-F:.]+)\]:(\d+)$/.exec(listen);
    if (m)
        return `http://[${m[1] === '::' ? '::1' : m[1]}]:${m[2]}/`;
    m = /^(\d+\.\d+\.\d+\.\d+):(\d+)$/.exec(listen);
    if (m)
        return `http://${m[1] === '0.0.0.0' ? '127.0.0.1' : m[1]}:${m[2]}/`;
    return null;
}

function readText(path) {
    try {
        const [, bytes] = GLib.file_get_contents(path);
        return new TextDecoder().decode(bytes);
    } catch (e) {
        return null;
    }
}

/** The dashboard's URL, or null when the bridge is not installed. */
export function findDashboard(dirs = UNIT_DIRS) {
    let values = null;
    for (const dir of dirs) {
        const text = readText(GLib.build_filenamev([dir, SOCKET_UNIT]));
        if (text !== null) {
            values = applyListenStream(text);
            break;
        }
    }
    if (values === null)
        return null;
    // Drop-ins, in the order systemd applies them: by file name.
    const dropins = new Map();
    for (const dir of [...dirs].reverse()) {
        const d = Gio.File.new_for_path(GLib.build_filenamev([dir, `${SOCKET_UNIT}.d`]));
        try {
            const children = d.enumerate_children('standard::name', Gio.FileQueryInfoFlags.NONE, null);
            for (let info; (info = children.next_file(null)) !== null;) {
                const name = info.get_name();
                if (name.endsWith('.conf'))
                    dropins.set(name, d.get_child(name).get_path());
            }
            children.close(null);
        } catch (e) {
            // No drop-in folder there.
        }
    }
    for (const name of [...dropins.keys()].sort())
        values = applyListenStream(readText(dropins.get(name)) ?? '', values);
    for (const v of values) {
        const url = urlForListen(v);
        if (url)
            return url;
    }
    return null;
}
