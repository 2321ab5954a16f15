// SPDX-License-Identifier: MIT
//
// The GNOME 45+ target as the build tree stages it (shell-ext/gnome-45)
// parses and imports under gjs's ES module loader, with the shell's
// modules stubbed (stubs/, compiled into a GResource by meson): extension.js
// and prefs.js each export a default class of the shell's base class.
// Usage: gjs -m esm-test.js STUBS.gresource extension|prefs
import Gio from 'gi://Gio';
import GIRepository from 'gi://GIRepository';
import GLib from 'gi://GLib';
import System from 'system';

import * as T from './harness.js';

const [gresource, which] = System.programArgs;
// St and Clutter are gnome-shell's and mutter's private typelibs, in
// /usr/lib/gnome-shell and /usr/lib/<multiarch>/mutter-<N>.
function children(path) {
    try {
        const e = Gio.File.new_for_path(path).enumerate_children('standard::name', 0, null);
        const names = [];
        for (let info; (info = e.next_file(null)) !== null;)
            names.push(`${path}/${info.get_name()}`);
        return names;
    } catch (e) {
        return [];
    }
}
const libdirs = ['/usr/lib', ...children('/usr/lib').filter(d => /-linux-gnu/.test(d))];
const private_ = ['/usr/lib/gnome-shell', ...libdirs.flatMap(children).filter(d => /\/mutter-\d+$/.test(d))];
for (const dir of private_) {
    GIRepository.Repository.prepend_search_path(dir);
    GIRepository.Repository.prepend_library_path(dir);
}
Gio.Resource.load(gresource)._register();
const dir = `${GLib.getenv('KASA_BUILD_ROOT')}/shell-ext/gnome-45`;

let mod = null;
try {
    mod = await import(`file://${dir}/${which}.js`);
} catch (e) {
    T.ok(false, `${which}.js imports`, `${e}\n${e.stack}`);
}
if (mod) {
    T.ok(true, `${which}.js imports`);
    const base = which === 'extension'
        ? (await import('resource:///org/gnome/shell/extensions/extension.js')).Extension
        : (await import('resource:///org/gnome/Shell/Extensions/js/extensions/prefs.js')).ExtensionPreferences;
    T.ok(typeof mod.default === 'function' && mod.default.prototype instanceof base,
        `its default export extends ${base.name}`);
    const methods = which === 'extension' ? ['enable', 'disable'] : ['fillPreferencesWindow'];
    T.ok(methods.every(m => typeof mod.default.prototype[m] === 'function'), `and has ${methods.join(', ')}`);
    const meta = JSON.parse(new TextDecoder().decode(GLib.file_get_contents(`${dir}/metadata.json`)[1]));
    T.ok(meta['shell-version'].every(v => parseInt(v, 10) >= 45), 'metadata.json names GNOME 45 and later only',
        meta['shell-version']);
}
System.exit(T.done());
