/* SPDX-License-Identifier: MIT */
#pragma once

/* The D-Bus names: a contract between the daemon, its clients and docs. */

#define KASA_BUS_NAME "org.kasamond.Kasa1"
#define KASA_MANAGER_PATH "/org/kasamond/Kasa1"
#define KASA_DEVICE_PREFIX "/org/kasamond/Kasa1/device"
#define KASA_SCHEDULE_PREFIX "/org/kasamond/Kasa1/schedule"
#define KASA_TARIFF_PREFIX "/org/kasamond/Kasa1/tariff"
#define KASA_ALERT_PREFIX "/org/kasamond/Kasa1/alert"

#define KASA_MANAGER_IFACE "org.kasamond.Kasa1.Manager"
#define KASA_DEVICE_IFACE "org.kasamond.Kasa1.Device"
#define KASA_METER_IFACE "org.kasamond.Kasa1.EnergyMeter"
#define KASA_SCHEDULE_IFACE "org.kasamond.Kasa1.Schedule"
#define KASA_TARIFF_IFACE "org.kasamond.Kasa1.Tariff"
#define KASA_ALERT_IFACE "org.kasamond.Kasa1.Alert"

/* The polkit actions (polkit/org.kasamond.kasa1.policy). */
#define KASA_ACTION_SWITCH "org.kasamond.kasa1.switch"
#define KASA_ACTION_MANAGE_DEVICES "org.kasamond.kasa1.manage-devices"
#define KASA_ACTION_MANAGE_SCHEDULES "org.kasamond.kasa1.manage-schedules"
#define KASA_ACTION_MANAGE_TARIFFS "org.kasamond.kasa1.manage-tariffs"
#define KASA_ACTION_MANAGE_ACCESS "org.kasamond.kasa1.manage-access"
#define KASA_ACTION_ERASE_DATA "org.kasamond.kasa1.erase-data"
#define KASA_ACTION_MANAGE_ALERTS "org.kasamond.kasa1.manage-alerts"

#define KASA_ERROR_NOT_FOUND "org.kasamond.Kasa1.Error.NotFound"
#define KASA_ERROR_OFFLINE "org.kasamond.Kasa1.Error.Offline"
#define KASA_ERROR_DEVICE "org.kasamond.Kasa1.Error.DeviceError"
#define KASA_ERROR_NOT_METERED "org.kasamond.Kasa1.Error.NotMetered"
#define KASA_ERROR_LIMIT "org.kasamond.Kasa1.Error.LimitReached"
#define KASA_ERROR_ALREADY_KNOWN "org.kasamond.Kasa1.Error.AlreadyKnown"
/* BindToken failed too often; the message says when to try again. */
#define KASA_ERROR_RATE_LIMITED "org.kasamond.Kasa1.Error.RateLimited"
/* Schedules need systemd as the service manager, on the bus kasamond is on. */
#define KASA_ERROR_NO_SERVICE_MANAGER "org.kasamond.Kasa1.Error.NoServiceManager"
#define KASA_ERROR_NO_LOCATION "org.kasamond.Kasa1.Error.NoLocation"
#define KASA_ERROR_IN_USE "org.kasamond.Kasa1.Error.InUse"
