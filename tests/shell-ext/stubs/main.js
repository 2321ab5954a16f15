// SPDX-License-Identifier: MIT
// Stub of resource:///org/gnome/shell/ui/main.js for esm-test.js.
export const panel = {statusArea: {quickSettings: {addExternalIndicator() {}}}};
export function notifyError() {}
