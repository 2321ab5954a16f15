// SPDX-License-Identifier: MIT
// Stub of resource:///org/gnome/shell/ui/quickSettings.js for esm-test.js:
// GObject classes, as the extension subclasses them when it is imported.
import GObject from 'gi://GObject';

export const QuickMenuToggle = GObject.registerClass(class QuickMenuToggle extends GObject.Object {});
export const SystemIndicator = GObject.registerClass(class SystemIndicator extends GObject.Object {});
