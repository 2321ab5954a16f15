// SPDX-License-Identifier: MIT
//
// GNOME 43 and 44: a legacy script (imports.*), installed as extension.js.
// The logic is in the shared modules, converted to this style at build
// time (shell-ext/legacy.py).
/* exported init */
const ExtensionUtils = imports.misc.extensionUtils;
const Main = imports.ui.main;
const Config = imports.misc.config;

const Me = ExtensionUtils.getCurrentExtension();
const {KasaIndicator} = Me.imports.indicator;

class KasamondExtension {
    enable() {
        this._indicator = new KasaIndicator({
            major: parseInt(Config.PACKAGE_VERSION, 10),
            settings: ExtensionUtils.getSettings(),
            openPreferences: () => ExtensionUtils.openPrefs(),
            dirs: [Me.metadata['kasamond-interfaces-dir']],
        });
        // 43 has no addExternalIndicator(): what it does, by hand.
        const quickSettings = Main.panel.statusArea.quickSettings;
        quickSettings._indicators.insert_child_at_index(this._indicator, 0);
        quickSettings._addItems(this._indicator.quickSettingsItems);
    }

    disable() {
        this._indicator.destroy();
        this._indicator = null;
    }
}

function init() {
    ExtensionUtils.initTranslations();
    return new KasamondExtension();
}
