// SPDX-License-Identifier: MIT
//
// Test only (tests/shell-ext/test-shell.py installs it into the test
// user's home): org.kasamond.ShellTest on the session bus reads what the
// kasamond extension shows, from its actors, opens its menu, clicks its
// switches with a virtual pointer and takes screenshots.
/* exported init */
const {Clutter, Gio, GLib, Shell} = imports.gi;
const Main = imports.ui.main;
const System = imports.system;

const UUID = 'kasamond@kasamond.org';
const IFACE = `<node><interface name="org.kasamond.ShellTest">
  <method name="State"><arg type="s" direction="out"/></method>
  <method name="OpenMenu"/>
  <method name="CloseMenu"/>
  <method name="Click"><arg type="s" name="path" direction="in"/><arg type="b" direction="out"/><arg type="s" direction="out"/></method>
  <method name="Screenshot"><arg type="s" name="file" direction="in"/></method>
  <method name="ScreenshotMenu"><arg type="s" name="file" direction="in"/></method>
  <method name="SetSetting"><arg type="s" name="key" direction="in"/><arg type="v" name="value" direction="in"/></method>
  <method name="Gc"/>
  <method name="HideOverview"/>
</interface></node>`;

function indicator() {
    return Main.extensionManager.lookup(UUID)?.stateObj?._indicator ?? null;
}

function count(actor) {
    return actor ? actor.get_n_children() : -1;
}

class Driver {
    constructor() {
        // Made long before the first click: a device's first events can
        // be lost while the seat is adding it.
        const seat = Clutter.get_default_backend().get_default_seat();
        this._pointer = seat.create_virtual_device(Clutter.InputDeviceType.POINTER_DEVICE);
    }

    State() {
        const ext = Main.extensionManager.lookup(UUID);
        const ind = indicator();
        const qs = Main.panel.statusArea.quickSettings;
        return JSON.stringify({
            state: ext?.state ?? null,
            error: ext?.error ?? null,
            indicator: ind ? {...ind.getState(), mapped: ind.is_mapped()} : null,
            actors: {indicators: count(qs._indicators), grid: count(qs.menu._grid),
                overlay: count(qs.menu._overlay)},
            systemBus: Gio.DBus.system.get_unique_name(),
        });
    }

    OpenMenu() {
        const qs = Main.panel.statusArea.quickSettings;
        qs.menu.open(imports.ui.boxpointer.PopupAnimation.NONE);
        indicator().toggle.menu.open(imports.ui.boxpointer.PopupAnimation.NONE);
    }

    CloseMenu() {
        Main.panel.statusArea.quickSettings.menu.close(imports.ui.boxpointer.PopupAnimation.NONE);
    }

    // A real click on the switch of the device's menu item: pointer
    // motion and button events through Clutter's virtual input device.
    // Clicked again (up to three times) while the item did not toggle: an
    // event can be lost while the shell is busy, as a user's click can.
    // Where the pointer cannot be brought there, the item is toggled as a
    // key press would; the reply says which.
    ClickAsync([path], invocation) {
        // The menu may be rebuilt meanwhile: the item is looked up anew
        // at each step, and every item seen is watched until it goes.
        let toggled = false;
        const watched = new Map();
        const current = () => {
            const it = indicator()?._items.get(path) ?? null;
            if (it && !watched.has(it)) {
                watched.set(it, [it.connect('toggled', () => (toggled = true)),
                    it.connect('destroy', () => watched.delete(it))]);
            }
            return it?.is_mapped() ? it : null;
        };
        const later = (ms, fn) => GLib.timeout_add(GLib.PRIORITY_DEFAULT, ms, () => {
            fn();
            return GLib.SOURCE_REMOVE;
        });
        const finish = how => {
            for (const [it, ids] of watched)
                ids.forEach(i => it.disconnect(i));
            const [px, py] = global.get_pointer();
            const picked = global.stage.get_actor_at_pos(Clutter.PickMode.REACTIVE, px, py);
            invocation.return_value(new GLib.Variant('(bs)', [toggled, `${how}; pointer at ${px},${py} on ${picked}`]));
        };
        // The pointer is moved until it is there (headless mutter may drop
        // a virtual device's first events), then pressed and released.
        let reopened = 0;
        const attempt = (n, moves) => {
            const item = current();
            if (!item) {
                // A click that missed may have closed the menu.
                if (reopened++ < 3 && indicator()?._items.has(path)) {
                    this.OpenMenu();
                    later(300, () => attempt(n, moves));
                } else {
                    finish('no such item on screen');
                }
                return;
            }
            const [x, y] = item._switch.get_transformed_position();
            const [w, h] = item._switch.get_transformed_size();
            const [cx, cy] = [x + w / 2, y + h / 2];
            const [px, py] = global.get_pointer();
            if (Math.abs(px - cx) > 2 || Math.abs(py - cy) > 2) {
                if (moves >= 20) {
                    item.toggle();
                    finish('no pointer reached the switch: toggled as by a key');
                    return;
                }
                this._pointer.notify_absolute_motion(GLib.get_monotonic_time(), cx, cy);
                Clutter.get_default_backend().get_default_seat().warp_pointer(cx, cy);
                later(150, () => attempt(n, moves + 1));
                return;
            }
            this._pointer.notify_button(GLib.get_monotonic_time(), Clutter.BUTTON_PRIMARY,
                Clutter.ButtonState.PRESSED);
            later(50, () => {
                this._pointer.notify_button(GLib.get_monotonic_time(), Clutter.BUTTON_PRIMARY,
                    Clutter.ButtonState.RELEASED);
                later(500, () => {
                    if (toggled) {
                        finish(`clicked ${n} time(s)`);
                    } else if (n < 3) {
                        attempt(n + 1, moves);
                    } else {
                        const it = current();
                        it?.toggle();
                        finish(it ? 'three clicks missed: toggled as by a key' : 'no such item on screen');
                    }
                });
            });
        };
        attempt(1, 0);
    }

    ScreenshotAsync([file], invocation) {
        this._shoot(file, null, invocation);
    }

    // Just the Quick Settings menu, as README shows it.
    ScreenshotMenuAsync([file], invocation) {
        const box = Main.panel.statusArea.quickSettings.menu._boxPointer;
        const [x, y] = box.get_transformed_position();
        const [w, h] = box.get_transformed_size();
        this._shoot(file, [x, y, w, h].map(Math.round), invocation);
    }

    // The extension's settings, through the shell's own (memory) backend.
    SetSetting(key, value) {
        const ext = Main.extensionManager.lookup(UUID);
        const source = Gio.SettingsSchemaSource.new_from_directory(`${ext.path}/schemas`,
            Gio.SettingsSchemaSource.get_default(), false);
        const settings = new Gio.Settings({settings_schema: source.lookup(ext.metadata['settings-schema'], false)});
        settings.set_value(key, value);
        Gio.Settings.sync();
    }

    _shoot(file, area, invocation) {
        const shot = new Shell.Screenshot();
        // Held until it is done: the test asks for garbage collections
        // (Gc), and nothing else in JS refers to it meanwhile.
        this._shots ??= new Set();
        this._shots.add(shot);
        let stream;
        try {
            stream = Gio.File.new_for_path(file).replace(null, false, Gio.FileCreateFlags.NONE, null);
        } catch (e) {
            this._shots.delete(shot);
            invocation.return_gerror(e);
            return;
        }
        const done = (o, res) => {
            this._shots.delete(shot);
            try {
                if (area)
                    o.screenshot_area_finish(res);
                else
                    o.screenshot_finish(res);
                stream.close(null);
                invocation.return_value(null);
            } catch (e) {
                invocation.return_error_literal(Gio.IOErrorEnum, Gio.IOErrorEnum.FAILED, e.message);
            }
        };
        if (area)
            shot.screenshot_area(...area, stream, done);
        else
            shot.screenshot(false, stream, done);
    }

    HideOverview() {
        Main.overview.hide();
    }

    Gc() {
        System.gc();
    }
}

class Extension {
    enable() {
        this._driver = new Driver();
        this._exported = Gio.DBusExportedObject.wrapJSObject(IFACE, this._driver);
        this._exported.export(Gio.DBus.session, '/org/kasamond/ShellTest');
        this._nameId = Gio.bus_own_name_on_connection(Gio.DBus.session, 'org.kasamond.ShellTest',
            Gio.BusNameOwnerFlags.NONE, null, null);
    }

    disable() {
        Gio.bus_unown_name(this._nameId);
        this._exported.unexport();
        this._driver._pointer.run_dispose();
        this._driver = null;
    }
}

function init() {
    return new Extension();
}
