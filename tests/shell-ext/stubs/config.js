// SPDX-License-Identifier: MIT
// Stub of resource:///org/gnome/shell/misc/config.js for esm-test.js.
export const PACKAGE_VERSION = '45.0';
