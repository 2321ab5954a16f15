// SPDX-License-Identifier: MIT
//
// GNOME 43 and 44: the preferences window, installed as prefs.js.
/* exported init, fillPreferencesWindow */
const ExtensionUtils = imports.misc.extensionUtils;

const Me = ExtensionUtils.getCurrentExtension();
const {fillWindow} = Me.imports.prefsPage;

function init() {
    ExtensionUtils.initTranslations();
}

function fillPreferencesWindow(window) {
    fillWindow(window, ExtensionUtils.getSettings());
}
