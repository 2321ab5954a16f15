// SPDX-License-Identifier: MIT
//
// The model's pure parts: formatting, totals of a tree fed by hand (costs
// included, as a daemon with tariffs signals them: TARIFF-API's Manager
// Currency/CostToday/CostMonth and EnergyMeter CostToday/CostMonth), and
// the bridge's dashboard address from its socket unit.
import GLib from 'gi://GLib';

import * as T from './harness.js';

const root = GLib.getenv('KASA_SOURCE_ROOT');
const src = `file://${root}/shell-ext/src`;
const {DeviceTree, DEVICE_IFACE, METER_IFACE, ALERT_IFACE} = await import(`${src}/model.js`);
const F = await import(`${src}/format.js`);
const D = await import(`${src}/dashboard.js`);

const L = 'en-US';
T.eq(F.formatPower(0, 'auto', L), '0.0 W', '0 W');
T.eq(F.formatPower(4.26, 'auto', L), '4.3 W', 'below 10 W one decimal');
T.eq(F.formatPower(42.4, 'auto', L), '42 W', 'watts');
T.eq(F.formatPower(999.4, 'auto', L), '999 W', 'just below a kilowatt');
T.eq(F.formatPower(1234, 'auto', L), '1.23 kW', 'kilowatts from 1000 W');
T.eq(F.formatPower(1234, 'watts', L), '1,234 W', 'watts when asked');
T.eq(F.formatPower(42, 'kilowatts', L), '0.04 kW', 'kilowatts when asked');
T.eq(F.formatPower(NaN, 'auto', L), 'unknown', 'NaN (offline) is unknown');
T.eq(F.formatPower(1234.5, 'auto', 'de-DE'), '1,23 kW', 'the locale\'s decimal separator');
T.eq(F.formatEnergy(350.2, L), '350 Wh', 'watt-hours');
T.eq(F.formatEnergy(1250, L), '1.25 kWh', 'kilowatt-hours');
T.eq(F.formatMoney(0.456, 'EUR', L), '€0.46', 'money in a known currency');
T.eq(F.formatMoney(12.3, 'USD', L), '$12.30', 'dollars');
T.eq(F.formatMoney(1.5, 'kr', L), '1.50 kr', 'a unit Intl does not know');
T.eq(F.formatMoney(NaN, 'EUR', L), 'unknown', 'no price is unknown');

const P = '/org/kasamond/Kasa1/device/';
function tree() {
    const m = new DeviceTree();
    m.update(`${P}aa`, DEVICE_IFACE, {Id: 'aa', Alias: 'Strip', On: true, Online: true, Parent: '/'});
    m.update(`${P}aa`, METER_IFACE, {Power: 30, EnergyToday: 300, CostToday: 0.09, CostMonth: 2});
    for (const [k, w] of [[1, 10], [0, 20]]) {
        m.update(`${P}aa_0${k}`, DEVICE_IFACE, {Id: `aa_0${k}`, Alias: `Out ${k}`, On: true, Online: true,
            Parent: `${P}aa`});
        m.update(`${P}aa_0${k}`, METER_IFACE, {Power: w, EnergyToday: w * 10, CostToday: w * 0.003, CostMonth: w / 10});
    }
    m.update(`${P}bb`, DEVICE_IFACE, {Id: 'bb', Alias: 'Bulb', On: false, Online: true, Parent: '/'});
    m.update(`${P}cc`, DEVICE_IFACE, {Id: 'cc', Alias: 'Cellar', On: true, Online: false, Parent: '/'});
    m.update(`${P}cc`, METER_IFACE, {Power: NaN, EnergyToday: 50, CostToday: NaN, CostMonth: NaN});
    return m;
}

let m = tree();
let v = m.view();
T.eq(v.rows.map(r => r.device.alias), ['Bulb', 'Cellar', 'Strip'], 'roots sorted by name');
T.eq(v.rows[2].outlets.map(o => o.id), ['aa_00', 'aa_01'], 'outlets in outlet order');
T.eq(v.totalPower, 30, 'total: outlets, not the strip, and not the offline plug');
T.eq(v.energyToday, 350, 'today\'s energy includes the offline plug\'s');
T.eq([v.currency, v.costToday, v.costMonth], [null, null, null], 'no Currency on the Manager: no cost');
T.eq(F.summaryLines(v, true, L), ['Today: 350 Wh'], 'summary without cost');
m.setManager({Currency: 'EUR', CostToday: 1.5, CostMonth: 20.25, TotalPower: 30});
v = m.view();
T.eq([v.currency, v.costToday, v.costMonth], ['EUR', 1.5, 20.25], 'the home\'s costs while every device shows');
T.eq(F.summaryLines(v, true, L), ['Today: 350 Wh · €1.50', 'This month: €20.25'], 'summary with costs');
T.eq(F.summaryLines(v, false, L), ['Today: 350 Wh'], 'show-cost off hides them');
v = m.view(new Set(['aa_01']));
T.eq([v.totalPower, v.costToday], [20, 0.06], 'a hidden outlet: the shown devices\' own sums');
v = m.view(new Set(['aa']));
T.eq([v.totalPower, v.costToday, v.rows.length], [0, null, 2], 'a hidden strip hides its outlets');
m.setManager({Currency: ''});
T.eq(m.view().costToday, null, 'Currency "" (no tariff): no cost');

T.eq(F.deviceStatus(m.get(`${P}cc`), 'auto', L), 'offline', 'an offline device says so');
T.eq(F.deviceStatus(m.get(`${P}bb`), 'auto', L), 'off', 'an unmetered device says on or off');
T.eq(F.deviceStatus(m.get(`${P}aa_00`), 'auto', L), '20 W', 'a metered one its power');

let structural = null;
const id = m.connect('changed', (o, s) => (structural = s));
m.update(`${P}bb`, DEVICE_IFACE, {On: true});
T.eq(structural, false, 'a state change is not structural');
m.removeInterfaces(`${P}aa`, [DEVICE_IFACE, METER_IFACE]);
T.eq(structural, true, 'a device gone is');
T.eq(m.roots().map(r => r.device.id).sort(), ['aa_00', 'aa_01', 'bb', 'cc'], 'orphaned outlets stand alone');
structural = null;
m.update('/org/kasamond/Kasa1/alert/12', ALERT_IFACE, {Id: 12, RuleName: 'heater', Kind: 'on', State: 'active',
    Device: `${P}bb`, Value: 5400});
m.update('/org/kasamond/Kasa1/alert/3', ALERT_IFACE, {Id: 3, RuleName: 'freezer', Kind: 'power-below',
    State: 'acknowledged', Device: `${P}cc`, Value: 0.4});
T.eq(structural, true, 'an alert redraws the menu');
T.eq(m.view(new Set(['cc'])).alerts.map(a => [a.Id, a.alias]), [[3, 'Cellar'], [12, 'Bulb']],
    'the open alerts by Id, with their device\'s name, hidden devices\' too');
T.eq(m.view().alerts.map(a => F.alertLine(a, 'EUR', 'auto', L)),
    ['freezer: Cellar · 0.4 W (acknowledged)', 'heater: Bulb · for 1.5 h'], 'their menu lines');
m.update('/org/kasamond/Kasa1/alert/12', ALERT_IFACE, {State: 'acknowledged'});
T.eq(m.view().alerts.map(a => a.State), ['acknowledged', 'acknowledged'], 'Acknowledge() shows');
m.removeInterfaces('/org/kasamond/Kasa1/alert/3', [ALERT_IFACE]);
T.eq(m.view().alerts.map(a => a.Id), [12], 'a resolved alert leaves');
T.eq(F.alertLine({RuleName: 'x', Kind: 'cost-month', State: 'active', Device: `${P}gone`, Value: 41.5, alias: ''},
    'EUR', 'auto', L), 'x: gone · €41.50', 'a cost in the currency; an unknown device by its id');
T.eq(F.alertValue({Kind: 'energy-day', Value: 2500}, null, 'auto', L), '2.50 kWh', 'an energy');
T.eq(F.alertValue({Kind: 'cost-day', Value: 3}, null, 'auto', L), '3.00', 'a cost without a currency');
T.eq(F.alertValue({Kind: 'offline', Value: 45}, null, 'auto', L), 'for 45 s', 'offline for seconds');
T.eq(F.alertValue({Kind: 'offline', Value: 600}, null, 'auto', L), 'for 10 min', 'or minutes');
m.disconnect(id);
T.eq(m.handlerCount, 0, 'disconnect() leaves no handler');

T.eq(D.urlForListen('8080'), 'http://127.0.0.1:8080/', 'ListenStream=PORT');
T.eq(D.urlForListen('127.0.0.1:8377'), 'http://127.0.0.1:8377/', 'ListenStream=ADDR:PORT');
T.eq(D.urlForListen('0.0.0.0:80'), 'http://127.0.0.1:80/', 'any address opens on loopback');
T.eq(D.urlForListen('[::1]:8080'), 'http://[::1]:8080/', 'IPv6');
T.eq(D.urlForListen('/run/kasamond-bridge.sock'), null, 'a UNIX socket is no dashboard');
const dir = GLib.dir_make_tmp('kasa-dash-XXXXXX');
const dirs = [`${dir}/etc`, `${dir}/lib`];
T.eq(D.findDashboard(dirs), null, 'no socket unit: no dashboard');
GLib.mkdir_with_parents(`${dir}/lib/kasamond-bridge.socket.d`, 0o755);
GLib.mkdir_with_parents(`${dir}/etc`, 0o755);
GLib.file_set_contents(`${dir}/lib/kasamond-bridge.socket`, '[Unit]\nListenStream=1\n[Socket]\nListenStream=127.0.0.1:8377\n');
T.eq(D.findDashboard(dirs), 'http://127.0.0.1:8377/', 'the unit\'s ListenStream');
GLib.file_set_contents(`${dir}/lib/kasamond-bridge.socket.d/port.conf`, '[Socket]\nListenStream=\nListenStream=9000\n');
T.eq(D.findDashboard(dirs), 'http://127.0.0.1:9000/', 'a drop-in resets and replaces it');
for (const f of ['lib/kasamond-bridge.socket.d/port.conf', 'lib/kasamond-bridge.socket'])
    GLib.unlink(`${dir}/${f}`);
for (const d of ['lib/kasamond-bridge.socket.d', 'lib', 'etc', ''])
    GLib.rmdir(`${dir}/${d}`);

imports.system.exit(T.done());
