// SPDX-License-Identifier: MIT
// Stub of resource:///org/gnome/shell/extensions/extension.js for esm-test.js.
export class Extension {
    constructor(metadata) {
        this.metadata = metadata;
    }
}
