// SPDX-License-Identifier: MIT
//
// The preferences window (libadwaita): the total's unit, costs shown or
// not, and which devices appear, listed from kasamond on the system bus.
import Adw from 'gi://Adw';
import Gio from 'gi://Gio';
import Gtk from 'gi://Gtk?version=4.0';

import {BUS_NAME, MANAGER_PATH} from './client.js';
import {fmt} from './format.js';
import {_} from './i18n.js';
import {DeviceTree, DEVICE_IFACE} from './model.js';

const UNITS = ['auto', 'watts', 'kilowatts'];

function switchRow(title, subtitle, active, onChange) {
    const row = new Adw.ActionRow({title, subtitle});
    const sw = new Gtk.Switch({active, valign: Gtk.Align.CENTER});
    sw.connect('notify::active', () => onChange(sw.active));
    row.add_suffix(sw);
    row.activatable_widget = sw;
    return row;
}

/** Fills `window` for `settings`; `connection` is the system bus by default. */
export function fillWindow(window, settings, connection = Gio.DBus.system) {
    const page = new Adw.PreferencesPage({title: _('Plugs'), icon_name: 'ac-adapter-symbolic'});
    window.add(page);

    const shown = new Adw.PreferencesGroup({title: _('Top Bar')});
    page.add(shown);
    const units = new Gtk.StringList();
    [_('Automatic'), _('Watts'), _('Kilowatts')].forEach(s => units.append(s));
    const unit = new Adw.ComboRow({title: _('Unit of the total'), model: units,
        selected: Math.max(0, UNITS.indexOf(settings.get_string('power-unit')))});
    unit.connect('notify::selected', () => settings.set_string('power-unit', UNITS[unit.selected]));
    shown.add(unit);
    shown.add(switchRow(_('Show costs'), _('Today\'s and this month\'s cost, when a tariff prices the energy'),
        settings.get_boolean('show-cost'), v => settings.set_boolean('show-cost', v)));

    const devices = new Adw.PreferencesGroup({title: _('Devices'),
        description: _('The devices the menu and the total show')});
    page.add(devices);
    const status = new Adw.ActionRow({title: _('Reading the devices from kasamond…')});
    devices.add(status);

    connection.call(BUS_NAME, MANAGER_PATH, 'org.freedesktop.DBus.ObjectManager', 'GetManagedObjects', null,
        null, Gio.DBusCallFlags.NO_AUTO_START, -1, null, (c, res) => {
            let objects;
            try {
                [objects] = c.call_finish(res).deepUnpack();
            } catch (e) {
                Gio.DBusError.strip_remote_error(e);
                status.title = _('kasamond is not running');
                status.subtitle = e.message;
                return;
            }
            const tree = new DeviceTree();
            for (const [path, ifaces] of Object.entries(objects)) {
                if (ifaces[DEVICE_IFACE])
                    tree.update(path, DEVICE_IFACE, Object.fromEntries(Object.entries(ifaces[DEVICE_IFACE])
                        .map(([k, v]) => [k, v.recursiveUnpack()])));
            }
            devices.remove(status);
            const hidden = () => new Set(settings.get_strv('hidden-devices'));
            const add = (dev, subtitle) => devices.add(switchRow(dev.alias || dev.id, subtitle,
                !hidden().has(dev.id), v => {
                    const h = hidden();
                    if (v)
                        h.delete(dev.id);
                    else
                        h.add(dev.id);
                    settings.set_strv('hidden-devices', [...h].sort());
                }));
            for (const {device, outlets} of tree.roots()) {
                add(device, device.model ?? '');
                for (const o of outlets)
                    add(o, fmt(_('Outlet of %s'), device.alias || device.id));
            }
            if (tree.size === 0)
                devices.add(new Adw.ActionRow({title: _('No devices')}));
        });
}
