// SPDX-License-Identifier: MIT
//
// The Quick Settings indicator: the total power in the top bar, and a
// toggle whose menu lists every device with its power, online state and a
// switch (strips with their outlets), today's energy and cost, the
// month's cost, active alerts and the bridge's dashboard. Shared by the
// GNOME 43 and 45+ entry points; `shell` carries what differs.
import Clutter from 'gi://Clutter';
import Gio from 'gi://Gio';
import GLib from 'gi://GLib';
import GObject from 'gi://GObject';
import St from 'gi://St';

import * as Main from 'resource:///org/gnome/shell/ui/main.js';
import * as PopupMenu from 'resource:///org/gnome/shell/ui/popupMenu.js';
import {QuickMenuToggle, SystemIndicator} from 'resource:///org/gnome/shell/ui/quickSettings.js';

import {Client, interfaceDirs} from './client.js';
import {findDashboard} from './dashboard.js';
import {alertLine, formatPower, deviceStatus, summaryLines, fmt} from './format.js';
import {_} from './i18n.js';
import {DeviceTree} from './model.js';

const ICON = 'ac-adapter-symbolic';
// An alert nobody acknowledged shows in the top bar too.
const ALERT_ICON = 'dialog-warning-symbolic';
const ACKNOWLEDGED_ICON = 'emblem-ok-symbolic';

const KasaToggle = GObject.registerClass({
    Signals: {'open-dashboard': {}, 'open-preferences': {}},
}, class KasaToggle extends QuickMenuToggle {
    _init(shellMajor) {
        // GNOME 44 renamed the toggle's label to title.
        super._init(shellMajor >= 44 ? {title: _('Plugs'), iconName: ICON} : {label: _('Plugs'), iconName: ICON});
        // Switching everything from one click would switch the freezer
        // too: the toggle's body opens the menu, like its arrow.
        this.connect('clicked', () => this.menu.open());
        // The shell moves the menu into its overlay and never takes it out.
        this.connect('destroy', () => this.menu.destroy());
        this.menu.setHeader(ICON, _('Smart Plugs'));

        this.alertSection = new PopupMenu.PopupMenuSection();
        this.menu.addMenuItem(this.alertSection);
        this.deviceSection = new PopupMenu.PopupMenuSection();
        this.menu.addMenuItem(this.deviceSection);
        this.errorItem = new PopupMenu.PopupMenuItem('', {reactive: false, style_class: 'kasamond-error'});
        this.errorItem.hide();
        this.menu.addMenuItem(this.errorItem);
        this.menu.addMenuItem(new PopupMenu.PopupSeparatorMenuItem());
        this.summarySection = new PopupMenu.PopupMenuSection();
        this.menu.addMenuItem(this.summarySection);
        this.dashboardItem = this.menu.addAction(_('Open Dashboard'), () => this.emit('open-dashboard'));
        this.dashboardItem.hide();
        this.prefsItem = this.menu.addAction(_('Plug Settings'), () => this.emit('open-preferences'));
    }

    setSubtitle(shellMajor, text) {
        // 43 has no subtitle: the header carries it.
        if (shellMajor >= 44)
            this.subtitle = text;
        this.menu.setHeader(ICON, _('Smart Plugs'), text);
    }
});

export const KasaIndicator = GObject.registerClass(
class KasaIndicator extends SystemIndicator {
    /**
     * shell: {major, settings, openPreferences(), connection (optional,
     * the system bus by default), dirs (interface folders to try first)}.
     */
    _init(shell) {
        super._init();
        this.name = 'kasamond-indicator';
        this._shell = shell;
        this._settings = shell.settings;
        this._icon = this._addIndicator();
        this._icon.icon_name = ICON;
        this._label = new St.Label({style_class: 'kasamond-total', y_align: Clutter.ActorAlign.CENTER});
        this.add_child(this._label);

        this._toggle = new KasaToggle(shell.major);
        this.quickSettingsItems.push(this._toggle);
        // When the shell goes down, its stage takes the toggle first.
        this._toggle.connect('destroy', () => {
            const i = this.quickSettingsItems.indexOf(this._toggle);
            if (i >= 0)
                this.quickSettingsItems.splice(i, 1);
        });
        this._toggle.connect('open-dashboard', () => this._openDashboard());
        this._toggle.connect('open-preferences', () => {
            Main.panel.closeQuickSettings?.();
            shell.openPreferences();
        });
        this._toggle.menu.connect('open-state-changed', (m, open) => {
            if (open)
                this._syncDashboard();
        });

        this._items = new Map(); // device path -> menu item
        this._structureDirty = true;
        this._syncId = 0;
        this._error = null;

        this._model = new DeviceTree();
        this._modelIds = [
            this._model.connect('changed', (m, structural) => this._queueSync(structural)),
            this._model.connect('available-changed', () => this._queueSync(true)),
        ];
        this._settingsIds = ['hidden-devices', 'show-cost', 'power-unit'].map(key =>
            this._settings.connect(`changed::${key}`, () => this._queueSync(true)));
        this._client = new Client({connection: shell.connection ?? Gio.DBus.system, model: this._model,
            dirs: interfaceDirs(shell.dirs ?? [])});
        this._syncDashboard();
        this._sync();
        this.connect('destroy', () => this._teardown());
    }

    // PropertiesChanged arrive per object and poll: the menu is redrawn
    // once for a burst of them.
    _queueSync(structural) {
        this._structureDirty ||= structural;
        if (this._syncId || this._destroyed)
            return;
        this._syncId = GLib.idle_add(GLib.PRIORITY_DEFAULT_IDLE, () => {
            this._syncId = 0;
            this._sync();
            return GLib.SOURCE_REMOVE;
        });
    }

    _view() {
        return this._model.view(new Set(this._settings.get_strv('hidden-devices')));
    }

    _sync() {
        const view = this._view();
        const unit = this._settings.get_string('power-unit');
        this.visible = view.available;
        this._toggle.visible = view.available;
        const total = view.totalPower === null ? '' : formatPower(view.totalPower, unit);
        this._label.text = total;
        this._label.visible = total !== '';
        this._icon.icon_name = view.alerts.some(a => a.State === 'active') ? ALERT_ICON : ICON;
        this._toggle.checked = view.anyOn;
        this._toggle.setSubtitle(this._shell.major, total);

        if (this._structureDirty) {
            this._structureDirty = false;
            this._rebuild(view, unit);
        }
        for (const [path, item] of this._items) {
            const dev = this._model.get(path);
            if (dev)
                this._syncItem(item, dev, unit);
        }

        this._toggle.summarySection.removeAll();
        for (const line of summaryLines(view, this._settings.get_boolean('show-cost')))
            this._toggle.summarySection.addMenuItem(new PopupMenu.PopupMenuItem(line, {reactive: false}));

        this._toggle.errorItem.visible = this._error !== null;
        this._toggle.errorItem.label.text = this._error ?? '';
    }

    _rebuild(view, unit) {
        this._toggle.deviceSection.removeAll();
        this._items.clear();
        if (view.available && view.rows.length === 0) {
            this._toggle.deviceSection.addMenuItem(
                new PopupMenu.PopupMenuItem(_('No devices'), {reactive: false}));
        }
        for (const {device, outlets} of view.rows) {
            this._addItem(device, unit, false);
            for (const outlet of outlets)
                this._addItem(outlet, unit, true);
        }
        this._toggle.alertSection.removeAll();
        for (const alert of view.alerts) {
            const item = new PopupMenu.PopupImageMenuItem(alertLine(alert, view.currency, unit),
                alert.State === 'active' ? ALERT_ICON : ACKNOWLEDGED_ICON,
                {reactive: false, style_class: 'kasamond-alert'});
            this._toggle.alertSection.addMenuItem(item);
        }
    }

    _addItem(dev, unit, outlet) {
        const item = new PopupMenu.PopupSwitchMenuItem('', dev.on,
            {style_class: outlet ? 'kasamond-outlet' : 'kasamond-device'});
        item.kasamondPath = dev.path;
        item.connect('toggled', (o, state) => this._switch(dev.path, state));
        this._items.set(dev.path, item);
        this._toggle.deviceSection.addMenuItem(item);
        this._syncItem(item, dev, unit);
    }

    _syncItem(item, dev, unit) {
        item.label.text = `${dev.alias || dev.id}  ·  ${deviceStatus(dev, unit)}`;
        if (!item.kasamondPending)
            item.setToggleState(dev.on);
        item.setSensitive(dev.online && !item.kasamondPending);
    }

    _switch(path, on) {
        const item = this._items.get(path);
        if (item)
            item.kasamondPending = true;
        this._error = null;
        this._queueSync(false);
        this._client.setOn(path, on).catch(e => {
            if (this._destroyed)
                return;
            const alias = this._model.get(path)?.alias ?? path.split('/').pop();
            this._error = fmt(_('Could not switch %s: %s'), alias, e.message);
        }).finally(() => {
            if (this._destroyed)
                return;
            const current = this._items.get(path);
            if (current)
                current.kasamondPending = false;
            this._queueSync(false);
        });
    }

    _syncDashboard() {
        this._dashboard = findDashboard();
        this._toggle.dashboardItem.visible = this._dashboard !== null;
    }

    _openDashboard() {
        if (!this._dashboard)
            return;
        Main.panel.closeQuickSettings?.();
        try {
            Gio.AppInfo.launch_default_for_uri(this._dashboard, global.create_app_launch_context(0, -1));
        } catch (e) {
            Main.notifyError(_('Could not open the dashboard'), e.message);
        }
    }

    /** What the tests read back: the state shown, from the actors. */
    getState() {
        return {
            visible: this.visible,
            label: this._label.visible ? this._label.text : '',
            menuOpen: this._toggle.menu.isOpen,
            items: [...this._items.entries()].map(([path, item]) => ({
                path, text: item.label.text, on: item._switch.state, sensitive: item.getSensitive(),
                outlet: item.has_style_class_name('kasamond-outlet'),
            })),
            summary: this._toggle.summarySection._getMenuItems().map(i => i.label.text),
            alerts: this._toggle.alertSection._getMenuItems().map(i => i.label.text),
            icon: this._icon.icon_name,
            error: this._toggle.errorItem.visible ? this._toggle.errorItem.label.text : null,
            dashboard: this._toggle.dashboardItem.visible ? this._dashboard : null,
            liveObjects: this._client?.liveObjects ?? 0,
        };
    }

    get toggle() {
        return this._toggle;
    }

    _teardown() {
        this._destroyed = true;
        this._settingsIds.forEach(id => this._settings.disconnect(id));
        this._modelIds.forEach(id => this._model.disconnect(id));
        this._client.destroy();
        if (this._syncId) {
            GLib.source_remove(this._syncId);
            this._syncId = 0;
        }
        this._items.clear();
        [...this.quickSettingsItems].forEach(item => item.destroy());
    }
});
