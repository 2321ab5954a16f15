// SPDX-License-Identifier: MIT
//
// How power, energy and money read in the top bar and the menu. Numbers
// follow the locale (Intl); `locale` is for the tests.
import {_} from './i18n.js';

// String.prototype.format is the shell's, not gjs's: the tests run without it.
export function fmt(template, ...args) {
    return template.replace(/%s/g, () => args.shift());
}

function number(x, digits, locale) {
    return new Intl.NumberFormat(locale, {minimumFractionDigits: digits, maximumFractionDigits: digits}).format(x);
}

/**
 * unit: 'auto' (W below 1 kW, else kW), 'watts' or 'kilowatts' (the
 * settings' power-unit). Below 10 W one
 * decimal, since small loads (chargers, standby) are what people check.
 */
export function formatPower(watts, unit = 'auto', locale = undefined) {
    if (typeof watts !== 'number' || !Number.isFinite(watts))
        return _('unknown');
    if (unit === 'kilowatts' || (unit === 'auto' && Math.abs(watts) >= 1000))
        /* Translators: power in kilowatts */
        return fmt(_('%s kW'), number(watts / 1000, 2, locale));
    /* Translators: power in watts */
    return fmt(_('%s W'), number(watts, Math.abs(watts) < 10 ? 1 : 0, locale));
}

export function formatEnergy(wh, locale = undefined) {
    if (typeof wh !== 'number' || !Number.isFinite(wh))
        return _('unknown');
    if (Math.abs(wh) >= 1000)
        /* Translators: energy in kilowatt-hours */
        return fmt(_('%s kWh'), number(wh / 1000, 2, locale));
    /* Translators: energy in watt-hours */
    return fmt(_('%s Wh'), number(wh, 0, locale));
}

/** currency: an ISO 4217 code as kasamond's tariffs name it. */
export function formatMoney(amount, currency, locale = undefined) {
    if (typeof amount !== 'number' || !Number.isFinite(amount))
        return _('unknown');
    try {
        return new Intl.NumberFormat(locale, {style: 'currency', currency}).format(amount);
    } catch (e) {
        // Not an ISO code Intl knows (a tariff may name any unit).
        return `${number(amount, 2, locale)} ${currency}`;
    }
}

/** The device's line in the menu: "Desk lamp  42 W", "Fridge  offline". */
export function deviceStatus(dev, unit = 'auto', locale = undefined) {
    if (!dev.online)
        return _('offline');
    if (!dev.metered)
        return dev.on ? _('on') : _('off');
    return formatPower(dev.power, unit, locale);
}

/** The summary line: "Today 1.25 kWh · €0.31", and the month's cost. */
export function summaryLines(view, showCost = true, locale = undefined) {
    const lines = [];
    if (view.energyToday !== null) {
        let today = fmt(_('Today: %s'), formatEnergy(view.energyToday, locale));
        if (showCost && view.costToday !== null)
            today += ` · ${formatMoney(view.costToday, view.currency, locale)}`;
        lines.push(today);
    }
    if (showCost && view.costMonth !== null)
        lines.push(fmt(_('This month: %s'), formatMoney(view.costMonth, view.currency, locale)));
    return lines;
}

/** How long a condition held, from seconds: "for 40 s", "for 5 min", "for 2.5 h". */
export function formatDuration(seconds, locale = undefined) {
    if (typeof seconds !== 'number' || !Number.isFinite(seconds))
        return _('unknown');
    if (seconds < 60)
        /* Translators: how long an alert's condition held, in seconds */
        return fmt(_('for %s s'), number(seconds, 0, locale));
    if (seconds < 3600)
        /* Translators: how long an alert's condition held, in minutes */
        return fmt(_('for %s min'), number(seconds / 60, 0, locale));
    /* Translators: how long an alert's condition held, in hours */
    return fmt(_('for %s h'), number(seconds / 3600, 1, locale));
}

/** What made an alert fire, in its rule's unit (Alert.Value). */
export function alertValue(alert, currency = null, unit = 'auto', locale = undefined) {
    const kind = alert.Kind ?? '';
    if (kind.startsWith('power-'))
        return formatPower(alert.Value, unit, locale);
    if (kind.startsWith('energy-'))
        return formatEnergy(alert.Value, locale);
    if (kind.startsWith('cost-'))
        return currency ? formatMoney(alert.Value, currency, locale) : number(alert.Value, 2, locale);
    return formatDuration(alert.Value, locale);
}

/** An alert's menu line: "freezer: Freezer · 0.4 W", acknowledged said so. */
export function alertLine(alert, currency = null, unit = 'auto', locale = undefined) {
    const device = alert.alias || (alert.Device ?? '').split('/').pop();
    /* Translators: an alert in the menu: rule name, device name, the value that fired it */
    const line = fmt(_('%s: %s · %s'), alert.RuleName ?? '', device, alertValue(alert, currency, unit, locale));
    /* Translators: an alert someone has acknowledged */
    return alert.State === 'acknowledged' ? fmt(_('%s (acknowledged)'), line) : line;
}
