// SPDX-License-Identifier: MIT
// Stub of resource:///org/gnome/Shell/Extensions/js/extensions/prefs.js for esm-test.js.
export class ExtensionPreferences {
    constructor(metadata) {
        this.metadata = metadata;
    }
}
