// SPDX-License-Identifier: MIT
// Stub of resource:///org/gnome/shell/ui/popupMenu.js for esm-test.js.
export class PopupMenuSection {}
export class PopupMenuItem {}
export class PopupSwitchMenuItem {}
export class PopupImageMenuItem {}
export class PopupSeparatorMenuItem {}
