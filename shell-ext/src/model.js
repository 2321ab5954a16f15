// SPDX-License-Identifier: MIT
//
// The extension's model: kasamond's devices as a tree (strips with their
// outlets), the totals the top bar and the menu show, and a small signal
// emitter. Plain JavaScript without imports, so gjs unit tests run it with
// no shell around; the bus client (client.js) feeds it.

export const DEVICE_IFACE = 'org.kasamond.Kasa1.Device';
export const METER_IFACE = 'org.kasamond.Kasa1.EnergyMeter';
export const ALERT_IFACE = 'org.kasamond.Kasa1.Alert';

// Bus property name -> model field, per interface.
const DEVICE_FIELDS = {
    Id: 'id', Alias: 'alias', Model: 'model', On: 'on', Online: 'online',
    Parent: 'parent', LastSeen: 'lastSeen',
};
const METER_FIELDS = {
    Power: 'power', EnergyToday: 'energyToday', EnergyTotal: 'energyTotal',
    CostToday: 'costToday', CostMonth: 'costMonth',
};
const MANAGER_FIELDS = {
    TotalPower: 'totalPower', DeviceCount: 'deviceCount', Currency: 'currency',
    CostToday: 'costToday', CostMonth: 'costMonth', PollInterval: 'pollInterval',
};

export class Emitter {
    constructor() {
        this._handlers = new Map();
        this._nextId = 1;
    }

    connect(name, callback) {
        const id = this._nextId++;
        this._handlers.set(id, {name, callback});
        return id;
    }

    disconnect(id) {
        this._handlers.delete(id);
    }

    // Handlers still connected: the tests check that teardown leaves none.
    get handlerCount() {
        return this._handlers.size;
    }

    emit(name, ...args) {
        for (const {name: n, callback} of [...this._handlers.values()]) {
            if (n === name)
                callback(this, ...args);
        }
    }
}

function finite(x) {
    return typeof x === 'number' && Number.isFinite(x);
}

function copyFields(target, fields, props) {
    let changed = false;
    for (const [prop, value] of Object.entries(props)) {
        const field = fields[prop];
        if (field !== undefined && !Object.is(target[field], value)) {
            target[field] = value;
            changed = true;
        }
    }
    return changed;
}

// An outlet's index from its id ("50c7bf0a1b2c_01"), for ordering.
function outletIndex(id) {
    const m = /_(\d+)$/.exec(id ?? '');
    return m ? parseInt(m[1], 10) : 0;
}

function byAlias(a, b) {
    return (a.alias ?? '').localeCompare(b.alias ?? '') || (a.id ?? '').localeCompare(b.id ?? '');
}

/**
 * DeviceTree holds what kasamond said, keyed by object path. Emits
 * 'changed' (structural: true when devices came, went or changed place)
 * and 'available-changed'.
 */
export class DeviceTree extends Emitter {
    constructor() {
        super();
        this._devices = new Map();
        this._alerts = new Map();
        this.manager = {};
        this.available = false;
    }

    setAvailable(available) {
        if (this.available === available)
            return;
        this.available = available;
        this.emit('available-changed', available);
    }

    /** Properties of one interface of one object (unpacked values). */
    update(path, iface, props) {
        if (iface === ALERT_IFACE) {
            // Rare, and shown as whole menu lines: any change redraws them.
            this._alerts.set(path, {...this._alerts.get(path), ...props, path});
            this.emit('changed', true);
            return;
        }
        if (iface !== DEVICE_IFACE && iface !== METER_IFACE)
            return;
        let dev = this._devices.get(path);
        const structural = !dev || (iface === METER_IFACE && !dev.metered) ||
            ('Parent' in props && props.Parent !== dev.parent) || ('Alias' in props && props.Alias !== dev.alias);
        if (!dev) {
            dev = {path, id: path.split('/').pop(), alias: '', on: false, online: false, parent: '/',
                metered: false, power: NaN, energyToday: NaN, costToday: NaN, costMonth: NaN};
            this._devices.set(path, dev);
        }
        if (iface === METER_IFACE)
            dev.metered = true;
        const changed = copyFields(dev, iface === DEVICE_IFACE ? DEVICE_FIELDS : METER_FIELDS, props);
        if (structural || changed)
            this.emit('changed', structural);
    }

    /** InterfacesRemoved: the Device interface takes the object with it. */
    removeInterfaces(path, ifaces) {
        if (ifaces.includes(ALERT_IFACE) && this._alerts.delete(path))
            this.emit('changed', true);
        const dev = this._devices.get(path);
        if (!dev)
            return;
        if (ifaces.includes(DEVICE_IFACE)) {
            this._devices.delete(path);
        } else if (ifaces.includes(METER_IFACE)) {
            dev.metered = false;
            dev.power = dev.energyToday = dev.costToday = dev.costMonth = NaN;
        } else {
            return;
        }
        this.emit('changed', true);
    }

    setManager(props) {
        if (copyFields(this.manager, MANAGER_FIELDS, props))
            this.emit('changed', false);
    }

    clear() {
        const had = this._devices.size > 0 || this._alerts.size > 0 || Object.keys(this.manager).length > 0;
        this._devices.clear();
        this._alerts.clear();
        this.manager = {};
        if (had)
            this.emit('changed', true);
    }

    get(path) {
        return this._devices.get(path) ?? null;
    }

    get size() {
        return this._devices.size;
    }

    /**
     * The tree: plugs and strips sorted by name, each strip with its
     * outlets in outlet order. An outlet whose strip is not (yet) known
     * stands alone.
     */
    roots() {
        const children = new Map();
        for (const dev of this._devices.values()) {
            if (dev.parent && dev.parent !== '/' && this._devices.has(dev.parent)) {
                if (!children.has(dev.parent))
                    children.set(dev.parent, []);
                children.get(dev.parent).push(dev);
            }
        }
        const roots = [...this._devices.values()]
            .filter(d => !d.parent || d.parent === '/' || !this._devices.has(d.parent))
            .sort(byAlias);
        return roots.map(device => ({
            device,
            outlets: (children.get(device.path) ?? []).sort((a, b) => outletIndex(a.id) - outletIndex(b.id)),
        }));
    }

    /**
     * The open alerts (org.kasamond.Kasa1.Alert: an object exists while
     * the alert is active or acknowledged) by Id, each with `alias`, the
     * name of its device ('' while the device is unknown).
     */
    alerts() {
        return [...this._alerts.values()]
            .filter(a => a.State === 'active' || a.State === 'acknowledged')
            .map(a => ({...a, alias: this._devices.get(a.Device)?.alias ?? ''}))
            .sort((a, b) => (a.Id ?? 0) - (b.Id ?? 0));
    }

    /**
     * What the indicator shows, for the devices not in `hidden` (ids; a
     * hidden strip hides its outlets). Power and energy are sums over the
     * visible plugs and outlets: a metered strip is the sum of its outlets,
     * so it is never counted twice (as kasamond's TotalPower). Costs are
     * the home's (Manager, fixed charges included) while every device is
     * shown, else the sum of the shown devices' own costs; null where
     * kasamond has no such figure (no tariff, or a daemon without costs).
     */
    view(hidden = new Set()) {
        const rows = [];
        const leaves = [];
        let hiddenAny = false;
        for (const {device, outlets} of this.roots()) {
            if (hidden.has(device.id)) {
                hiddenAny = true;
                continue;
            }
            const shown = outlets.filter(o => !hidden.has(o.id));
            hiddenAny ||= shown.length !== outlets.length;
            rows.push({device, outlets: shown});
            if (outlets.length === 0)
                leaves.push(device);
            else
                leaves.push(...shown);
        }
        const metered = leaves.filter(d => d.metered);
        const sum = (list, field) => list.reduce((s, d) => s + (finite(d[field]) ? d[field] : 0), 0);
        const sumKnown = field => {
            const known = metered.filter(d => finite(d[field]));
            return known.length ? sum(known, field) : null;
        };
        const m = this.manager;
        const currency = typeof m.currency === 'string' && m.currency !== '' ? m.currency : null;
        let costToday = null, costMonth = null;
        if (currency) {
            if (!hiddenAny) {
                costToday = finite(m.costToday) ? m.costToday : null;
                costMonth = finite(m.costMonth) ? m.costMonth : null;
            } else {
                costToday = sumKnown('costToday');
                costMonth = sumKnown('costMonth');
            }
        }
        return {
            available: this.available,
            rows,
            metered: metered.length > 0,
            totalPower: metered.length ? sum(metered.filter(d => d.online), 'power') : null,
            energyToday: metered.length ? sum(metered, 'energyToday') : null,
            currency,
            costToday,
            costMonth,
            anyOn: rows.some(r => r.device.on),
            // Alerts of hidden devices too: a hidden freezer may still fail.
            alerts: this.alerts(),
        };
    }
}
