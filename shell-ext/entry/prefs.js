// SPDX-License-Identifier: MIT
//
// GNOME 45 and later: the preferences window.
import {ExtensionPreferences} from 'resource:///org/gnome/Shell/Extensions/js/extensions/prefs.js';

import {fillWindow} from './prefsPage.js';

export default class KasamondPreferences extends ExtensionPreferences {
    fillPreferencesWindow(window) {
        fillWindow(window, this.getSettings());
    }
}
