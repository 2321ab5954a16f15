// SPDX-License-Identifier: MIT
//
// The extension's gettext domain. The entry points bind it to the
// extension's locale folder (initTranslations); strings are marked with
// _() and ngettext() from here, so xgettext finds them with its defaults.
import Gettext from 'gettext';

export const DOMAIN = 'kasamond-shell';

const domain = Gettext.domain(DOMAIN);

export function _(msgid) {
    return domain.gettext(msgid);
}

export function ngettext(msgid, plural, n) {
    return domain.ngettext(msgid, plural, n);
}
