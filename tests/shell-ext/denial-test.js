// SPDX-License-Identifier: MIT
//
// Switching as a user polkit refuses (no agent, not root): the client's
// promise rejects with kasamond's own message, and the plug stays on.
import GLib from 'gi://GLib';

import * as T from './harness.js';

const src = `file://${GLib.getenv('KASA_SOURCE_ROOT')}/shell-ext/src`;
const {DeviceTree} = await import(`${src}/model.js`);
const {Client, MANAGER_PATH} = await import(`${src}/client.js`);

const conn = T.connect(GLib.getenv('KASA_BUS_ADDRESS'));
const env = T.request({cmd: 'devices'});
const plug = `${MANAGER_PATH}/device/${env.ids[0]}`;
const model = new DeviceTree();
const client = new Client({connection: conn, model, dirs: [`${GLib.getenv('KASA_SOURCE_ROOT')}/dbus`]});

T.ok(await T.waitFor(() => model.get(plug)?.online), 'an unprivileged user reads the devices');
const r = await T.settle(client.setOn(plug, false));
T.ok(!r.ok, 'switching is refused');
T.ok(r.error && /authoriz|not allowed|denied/i.test(r.error.message) && !/GDBus\.Error/.test(r.error.message),
    'with the daemon\'s message, without GDBus\'s prefix', r.error?.message);
T.eq(T.request({cmd: 'truth', device: 0}).outlets[0].relay, true, 'the plug is still on');
client.destroy();
imports.system.exit(T.done());
