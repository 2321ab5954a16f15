// SPDX-License-Identifier: MIT
//
// kasamond on the bus: a name watcher, and while the name has an owner,
// proxies built asynchronously from the interface XML the project
// installs (dbus-1/interfaces), kept current by PropertiesChanged and the
// ObjectManager's InterfacesAdded/InterfacesRemoved; nothing is polled.
// Everything feeds a DeviceTree (model.js). No shell imports, so the gjs
// unit tests run it against a private bus.
import Gio from 'gi://Gio';
import GLib from 'gi://GLib';

import {DEVICE_IFACE, METER_IFACE, ALERT_IFACE} from './model.js';

export const BUS_NAME = 'org.kasamond.Kasa1';
export const MANAGER_PATH = '/org/kasamond/Kasa1';
export const MANAGER_IFACE = 'org.kasamond.Kasa1.Manager';
const DEVICE_PREFIX = `${MANAGER_PATH}/device/`;
const ALERT_PREFIX = `${MANAGER_PATH}/alert/`;

// A standard interface: no project file for it.
const OBJECT_MANAGER_XML = `<node>
  <interface name="org.freedesktop.DBus.ObjectManager">
    <method name="GetManagedObjects">
      <arg type="a{oa{sa{sv}}}" name="objects" direction="out"/>
    </method>
    <signal name="InterfacesAdded">
      <arg type="o" name="object"/>
      <arg type="a{sa{sv}}" name="interfaces"/>
    </signal>
    <signal name="InterfacesRemoved">
      <arg type="o" name="object"/>
      <arg type="as" name="interfaces"/>
    </signal>
  </interface>
</node>`;

/** Where the project's interface files may be: `extra` first, then XDG. */
export function interfaceDirs(extra = []) {
    return [...extra, ...GLib.get_system_data_dirs().map(d => GLib.build_filenamev([d, 'dbus-1', 'interfaces']))];
}

/** The XML text of interface `name`, or null when no folder has it. */
export function loadInterfaceXml(name, dirs) {
    for (const dir of dirs) {
        const path = GLib.build_filenamev([dir, `${name}.xml`]);
        try {
            const [, bytes] = GLib.file_get_contents(path);
            return new TextDecoder().decode(bytes);
        } catch (e) {
            if (!e.matches(GLib.FileError, GLib.FileError.NOENT))
                throw e;
        }
    }
    return null;
}

function unpackProps(variantDict) {
    // a{sv} as a GVariant, or already {name: GVariant}.
    const dict = variantDict instanceof GLib.Variant ? variantDict.deepUnpack() : variantDict;
    const out = {};
    for (const [k, v] of Object.entries(dict))
        out[k] = v instanceof GLib.Variant ? v.recursiveUnpack() : v;
    return out;
}

function cachedProps(proxy) {
    const out = {};
    for (const name of proxy.get_cached_property_names())
        out[name] = proxy.get_cached_property(name).recursiveUnpack();
    return out;
}

// A session's callbacks can outlive it: SpiderMonkey's inline caches keep
// functions they called (gjs's makeProxyWrapper keeps a `ready` of ours),
// and with it its `entry`. A proxy dies with its last reference, so the
// entry lets go of it here, not when the engine lets go of the entry.
function release(entry) {
    if (entry.proxy) {
        entry.proxy.disconnect(entry.id);
        entry.proxy = null;
    }
}

function isCancelled(e) {
    return e instanceof GLib.Error && e.matches(Gio.IOErrorEnum, Gio.IOErrorEnum.CANCELLED);
}

/** The daemon's message of a failed call, without GDBus's prefix. */
export function errorMessage(e) {
    if (e instanceof GLib.Error) {
        Gio.DBusError.strip_remote_error(e);
        return e.message;
    }
    return String(e);
}

/**
 * Client: watches org.kasamond.Kasa1 on `connection` and mirrors it into
 * `model`. destroy() undoes everything it set up.
 */
export class Client {
    constructor({connection, model, dirs}) {
        this._connection = connection;
        this._model = model;
        this._wrappers = new Map();
        for (const iface of [MANAGER_IFACE, DEVICE_IFACE, METER_IFACE]) {
            const xml = loadInterfaceXml(iface, dirs);
            if (xml === null)
                throw new Error(`kasamond's interface file ${iface}.xml is not installed (looked in ${dirs.join(', ')})`);
            this._wrappers.set(iface, Gio.DBusProxy.makeProxyWrapper(xml));
        }
        // Interfaces newer than the installed files (alerts) are read
        // through untyped proxies: shown when the daemon has them.
        const alertXml = loadInterfaceXml(ALERT_IFACE, dirs);
        if (alertXml !== null)
            this._wrappers.set(ALERT_IFACE, Gio.DBusProxy.makeProxyWrapper(alertXml));
        this._wrappers.set('om', Gio.DBusProxy.makeProxyWrapper(OBJECT_MANAGER_XML));
        this._session = null;
        this._watchId = Gio.bus_watch_name_on_connection(connection, BUS_NAME, Gio.BusNameWatcherFlags.NONE,
            (c, name, owner) => this._appeared(owner), () => this._vanished());
    }

    _appeared(owner) {
        this._session?.destroy();
        this._session = new Session(this._connection, owner, this._wrappers, this._model);
        this._model.setAvailable(true);
    }

    _vanished() {
        this._session?.destroy();
        this._session = null;
        this._model.clear();
        this._model.setAvailable(false);
    }

    /**
     * Switches a device; resolves when kasamond confirmed it, rejects with
     * the daemon's message (a polkit denial included). polkit may ask for
     * a password: the call carries ALLOW_INTERACTIVE_AUTHORIZATION and no
     * timeout of its own (the daemon has one per device).
     */
    setOn(path, on) {
        if (!this._session)
            return Promise.reject(new Error('kasamond is not running'));
        return this._session.call(path, DEVICE_IFACE, 'SetOn', new GLib.Variant('(b)', [on]));
    }

    /** Live proxies and pending calls: the leak tests read it. */
    get liveObjects() {
        return this._session?.liveObjects ?? 0;
    }

    destroy() {
        if (this._watchId) {
            Gio.bus_unwatch_name(this._watchId);
            this._watchId = 0;
        }
        this._session?.destroy();
        this._session = null;
        this._model.clear();
        this._model.setAvailable(false);
    }
}

// One owner of the name: a restart of kasamond gets a new session.
class Session {
    constructor(connection, owner, wrappers, model) {
        this._connection = connection;
        this._owner = owner;
        this._wrappers = wrappers;
        this._model = model;
        this._cancellable = new Gio.Cancellable();
        this._objects = new Map(); // path -> Map(iface -> {proxy, id})
        this._pending = 0;

        this._proxy(MANAGER_PATH, MANAGER_IFACE, props => this._model.setManager(props));
        new (wrappers.get('om'))(connection, owner, MANAGER_PATH, (proxy, error) => {
            if (error) {
                if (!isCancelled(error))
                    console.warn(`kasamond: ObjectManager: ${error.message}`);
                return;
            }
            if (this._cancellable.is_cancelled())
                return;
            this._om = proxy;
            this._omSignalId = proxy.connect('g-signal', (p, sender, signal, params) => {
                if (signal === 'InterfacesAdded') {
                    const [path, ifaces] = params.deepUnpack();
                    this._added(path, ifaces);
                } else if (signal === 'InterfacesRemoved') {
                    const [path, ifaces] = params.deepUnpack();
                    this._removed(path, ifaces);
                }
            });
            // Subscribed first, so no object falls between the two.
            proxy.call('GetManagedObjects', null, Gio.DBusCallFlags.NONE, -1, this._cancellable, (p, res) => {
                try {
                    const [objects] = p.call_finish(res).deepUnpack();
                    // A reply may beat the cancellation of a session
                    // destroyed meanwhile: it must make no proxy then.
                    if (this._cancellable.is_cancelled())
                        return;
                    for (const [path, ifaces] of Object.entries(objects))
                        this._added(path, ifaces);
                } catch (e) {
                    if (!isCancelled(e))
                        console.warn(`kasamond: GetManagedObjects: ${e.message}`);
                }
            });
        }, this._cancellable, Gio.DBusProxyFlags.DO_NOT_AUTO_START);
    }

    // A proxy of (path, iface) whose properties go to `sink` now and on
    // every PropertiesChanged.
    _proxy(path, iface, sink) {
        const Wrapper = this._wrappers.get(iface);
        const entry = {proxy: null, id: 0};
        let ifaces = this._objects.get(path);
        if (!ifaces)
            this._objects.set(path, ifaces = new Map());
        ifaces.set(iface, entry);
        const ready = (proxy, error) => {
            if (error) {
                // A device removed while its proxy was made: its
                // InterfacesRemoved comes, or came, on its own.
                if (!isCancelled(error) && this._objects.get(path)?.get(iface) === entry)
                    console.warn(`kasamond: ${path} ${iface}: ${error.message}`);
                return;
            }
            if (this._objects.get(path)?.get(iface) !== entry)
                return;
            entry.proxy = proxy;
            entry.id = proxy.connect('g-properties-changed', (p, changed, invalidated) => {
                const props = unpackProps(changed);
                for (const name of invalidated)
                    props[name] = undefined;
                sink(props);
            });
            sink(cachedProps(proxy));
        };
        // None of these interfaces has signals of its own.
        const flags = Gio.DBusProxyFlags.DO_NOT_AUTO_START | Gio.DBusProxyFlags.DO_NOT_CONNECT_SIGNALS;
        if (Wrapper) {
            new Wrapper(this._connection, this._owner, path, ready, this._cancellable, flags);
        } else {
            Gio.DBusProxy.new(this._connection, flags, null, this._owner, path, iface, this._cancellable,
                (o, res) => {
                    let proxy;
                    try {
                        proxy = Gio.DBusProxy.new_finish(res);
                    } catch (e) {
                        ready(null, e);
                        return;
                    }
                    ready(proxy, null);
                });
        }
    }

    _added(path, ifaces) {
        if (this._cancellable.is_cancelled())
            return;
        if (!path.startsWith(DEVICE_PREFIX) && !path.startsWith(ALERT_PREFIX))
            return;
        for (const [iface, props] of Object.entries(ifaces)) {
            if (iface !== DEVICE_IFACE && iface !== METER_IFACE && iface !== ALERT_IFACE)
                continue;
            // What GetManagedObjects or the signal carried shows at once;
            // the proxy then keeps it current.
            this._model.update(path, iface, unpackProps(props));
            if (!this._objects.get(path)?.has(iface))
                this._proxy(path, iface, p => this._model.update(path, iface, p));
        }
    }

    _removed(path, ifaces) {
        const entries = this._objects.get(path);
        for (const iface of ifaces) {
            const entry = entries?.get(iface);
            if (entry) {
                release(entry);
                entries.delete(iface);
            }
        }
        if (entries?.size === 0)
            this._objects.delete(path);
        this._model.removeInterfaces(path, ifaces);
    }

    call(path, iface, method, args) {
        this._pending++;
        return new Promise((resolve, reject) => {
            this._connection.call(this._owner, path, iface, method, args, null,
                Gio.DBusCallFlags.ALLOW_INTERACTIVE_AUTHORIZATION, GLib.MAXINT32, this._cancellable,
                (c, res) => {
                    this._pending--;
                    try {
                        resolve(c.call_finish(res));
                    } catch (e) {
                        reject(new Error(errorMessage(e)));
                    }
                });
        });
    }

    get liveObjects() {
        let n = this._pending + (this._om ? 1 : 0);
        for (const ifaces of this._objects.values())
            n += ifaces.size;
        return n;
    }

    destroy() {
        this._cancellable.cancel();
        if (this._om) {
            this._om.disconnect(this._omSignalId);
            this._om = null;
        }
        for (const ifaces of this._objects.values())
            ifaces.forEach(release);
        this._objects.clear();
    }
}
