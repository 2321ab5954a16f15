// SPDX-License-Identifier: MIT
//
// The preferences window (the staged gnome-45 prefsPage.js, which both
// targets share) on the headless shell's Wayland display, as the test user:
// it lists kasamond's devices from the system bus, and its rows change the
// settings. Run by test-shell.py. Usage: gjs -m prefs-test.js STRIP_ID
import Adw from 'gi://Adw';
import Gio from 'gi://Gio';
import GLib from 'gi://GLib';
import Gtk from 'gi://Gtk?version=4.0';
import System from 'system';

import * as T from './harness.js';

const [stripId] = System.programArgs;
const {fillWindow} = await import(`file://${GLib.getenv('KASA_BUILD_ROOT')}/shell-ext/gnome-45/prefsPage.js`);

function* walk(w) {
    yield w;
    for (let c = w.get_first_child(); c; c = c.get_next_sibling())
        yield* walk(c);
}

Adw.init();
const settings = new Gio.Settings({schema_id: 'org.gnome.shell.extensions.kasamond'});
const window = new Adw.PreferencesWindow();
fillWindow(window, settings);
window.present();

const rows = () => [...walk(window)].filter(w => w instanceof Adw.ActionRow);
const row = title => rows().find(r => r.title === title);
T.ok(await T.waitFor(() => row('Office Strip') && row('Monitor'), 20), 'the window lists kasamond\'s devices',
    rows().map(r => r.title).join(', '));
T.eq(row('Monitor')?.subtitle, 'Outlet of Office Strip', 'an outlet names its strip');
const sw = [...walk(row('Office Strip'))].find(w => w instanceof Gtk.Switch);
T.ok(sw?.active, 'a shown device\'s switch is on');
sw.active = false;
T.eq(settings.get_strv('hidden-devices'), [stripId], 'switching it off hides the device');
sw.active = true;
T.eq(settings.get_strv('hidden-devices'), [], 'and on shows it again');
const combo = [...walk(window)].find(w => w instanceof Adw.ComboRow);
combo.selected = 2;
T.eq(settings.get_string('power-unit'), 'kilowatts', 'the unit row sets the total\'s unit');
const cost = [...walk(row('Show costs'))].find(w => w instanceof Gtk.Switch);
cost.active = false;
T.eq(settings.get_boolean('show-cost'), false, 'the cost row sets show-cost');
await T.sleep(1);
T.request({cmd: 'screenshot'});
window.close();
System.exit(T.done());
