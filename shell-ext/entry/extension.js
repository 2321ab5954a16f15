// SPDX-License-Identifier: MIT
//
// GNOME 45 and later: an ES module whose default export is the extension.
import * as Main from 'resource:///org/gnome/shell/ui/main.js';
import * as Config from 'resource:///org/gnome/shell/misc/config.js';
import {Extension} from 'resource:///org/gnome/shell/extensions/extension.js';

import {KasaIndicator} from './indicator.js';

export default class KasamondExtension extends Extension {
    enable() {
        this.initTranslations();
        this._indicator = new KasaIndicator({
            major: parseInt(Config.PACKAGE_VERSION, 10),
            settings: this.getSettings(),
            openPreferences: () => this.openPreferences(),
            dirs: [this.metadata['kasamond-interfaces-dir']],
        });
        Main.panel.statusArea.quickSettings.addExternalIndicator(this._indicator);
    }

    disable() {
        this._indicator.destroy();
        this._indicator = null;
    }
}
