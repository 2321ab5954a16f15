/* SPDX-License-Identifier: MIT */

/*
 * Unit tests of the smart dialect (common/kasa-smart.c). The replies are
 * modelled on what Tapo P110 (firmware 1.1.x, 1.3.x), KP125M and P300
 * send: field names, units and base64 strings as they are, identifiers
 * made up.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kasa-smart.h"
#include "macro.h"
#include "tap.h"

/* nickname "Kitchen kettle", ssid "home-net" */
#define P110_INFO                                                                                              \
        "{\"device_id\":\"80223A1B2C3D4E5F60718293A4B5C6D7E8F90A1B\",\"fw_ver\":\"1.3.0 Build 230905 Rel.152200\"," \
        "\"hw_ver\":\"1.0\",\"type\":\"SMART.TAPOPLUG\",\"model\":\"P110\",\"mac\":\"5C-A6-E6-12-34-56\","      \
        "\"hw_id\":\"56DD079101D61D400A11C4A3D41C51FA\",\"fw_id\":\"00000000000000000000000000000000\","         \
        "\"oem_id\":\"A6C77E4FDD2A4F84E6F6D3C2B0A9F1E2\",\"ip\":\"192.0.2.10\",\"time_diff\":60,"              \
        "\"ssid\":\"aG9tZS1uZXQ=\",\"rssi\":-48,\"signal_level\":3,\"latitude\":0,\"longitude\":0,"            \
        "\"lang\":\"en_US\",\"avatar\":\"kettle\",\"region\":\"Europe/Berlin\",\"specs\":\"\","                 \
        "\"nickname\":\"S2l0Y2hlbiBrZXR0bGU=\",\"has_set_location_info\":true,\"device_on\":true,"            \
        "\"on_time\":3721,\"default_states\":{\"type\":\"last_states\",\"state\":{}},\"overheated\":false,"   \
        "\"power_protection_status\":\"normal\",\"location\":\"\"}"

#define P110_USAGE                                                                                         \
        "{\"today_runtime\":62,\"month_runtime\":5071,\"today_energy\":95,\"month_energy\":4117,"         \
        "\"local_time\":\"2026-12-02 04:01:12\",\"electricity_charge\":[0,0,0],\"current_power\":1843210}"

static const char p110_poll[] =
        "{\"error_code\":0,\"result\":{\"responses\":["
        "{\"method\":\"get_device_info\",\"result\":" P110_INFO ",\"error_code\":0},"
        "{\"method\":\"get_energy_usage\",\"result\":" P110_USAGE ",\"error_code\":0},"
        "{\"method\":\"get_emeter_data\",\"error_code\":-10000}]}}";

static const char kp125m_poll[] =
        "{\"error_code\":0,\"result\":{\"responses\":["
        "{\"method\":\"get_energy_usage\",\"result\":" P110_USAGE ",\"error_code\":0},"
        "{\"method\":\"get_emeter_data\",\"result\":{\"current_ma\":7812,\"energy_wh\":152310,"
        "\"power_mw\":1795402,\"voltage_mv\":229870},\"error_code\":0}]}}";

/* Old P110 firmware: energy usage without current_power. */
static const char p110_old_poll[] =
        "{\"error_code\":0,\"result\":{\"responses\":["
        "{\"method\":\"get_energy_usage\",\"result\":{\"today_runtime\":1,\"month_runtime\":2,"
        "\"today_energy\":3,\"month_energy\":12}, \"error_code\":0},"
        "{\"method\":\"get_current_power\",\"result\":{\"current_power\":17},\"error_code\":0}]}}";

/* P300 strip, two outlets (nicknames "Lamp", "Radio"). */
static const char p300_poll[] =
        "{\"error_code\":0,\"result\":{\"responses\":["
        "{\"method\":\"get_device_info\",\"result\":{\"device_id\":\"8022AAAA\",\"model\":\"P300\","
        "\"type\":\"SMART.TAPOPLUG\",\"mac\":\"5CA6E6ABCDEF\",\"fw_ver\":\"1.0.7 Build 220715 Rel.200458\","
        "\"hw_ver\":\"1.0\",\"nickname\":\"UG93ZXIgc3RyaXA=\"},\"error_code\":0},"
        "{\"method\":\"get_child_device_list\",\"result\":{\"child_device_list\":["
        "{\"device_id\":\"8022AAAA00\",\"nickname\":\"TGFtcA==\",\"device_on\":true,\"on_time\":12,\"position\":1},"
        "{\"device_id\":\"8022AAAA01\",\"nickname\":\"UmFkaW8=\",\"device_on\":false,\"position\":2}],"
        "\"start_index\":0,\"sum\":2},\"error_code\":0}]}}";

static int parse(const char *json, KasaResponse *resp, KasaError *err) {
        return kasa_smart_response_parse(json, strlen(json), resp, err);
}

static void test_requests(void) {
        _cleanup_free_ char *q = kasa_smart_request_query(KASA_SMART_DEVICE_INFO | KASA_SMART_ENERGY_USAGE, NULL);
        is_str(q,
               "{\"method\":\"multipleRequest\",\"params\":{\"requests\":[{\"method\":\"get_device_info\","
               "\"params\":null},{\"method\":\"get_energy_usage\",\"params\":null}]}}",
               "query: one multipleRequest");
        _cleanup_free_ char *on = kasa_smart_request_set_on(true, NULL);
        is_str(on,
               "{\"method\":\"multipleRequest\",\"params\":{\"requests\":[{\"method\":\"set_device_info\","
               "\"params\":{\"device_on\":true}}]}}",
               "set_device_info device_on");
        _cleanup_free_ char *child = kasa_smart_request_set_on(false, "8022AAAA01");
        is_str(child,
               "{\"method\":\"multipleRequest\",\"params\":{\"requests\":[{\"method\":\"control_child\","
               "\"params\":{\"device_id\":\"8022AAAA01\",\"requestData\":{\"method\":\"multipleRequest\","
               "\"params\":{\"requests\":[{\"method\":\"set_device_info\",\"params\":{\"device_on\":false}}]}}}}]}}",
               "a child is switched through control_child");
        _cleanup_free_ char *nick = kasa_smart_request_set_nickname("Kitchen kettle", NULL);
        ok(nick && strstr(nick, "\"nickname\":\"S2l0Y2hlbiBrZXR0bGU=\""), "nickname goes base64");
        _cleanup_free_ char *nick1 = kasa_smart_request_set_nickname("ab", NULL);
        ok(nick1 && strstr(nick1, "\"YWI=\""), "base64 padding of 2 bytes");
}

static void test_p110(void) {
        static KasaResponse r;
        KasaError err = {};

        is_int(parse(p110_poll, &r, &err), 0, "P110 poll parses");
        diag("%s", err.message);
        is_int(r.sysinfo_err, 0, "device info answered");
        is_str(r.sysinfo.model, "P110", "model");
        is_str(r.sysinfo.mac, "5C:A6:E6:12:34:56", "MAC normalised");
        is_str(r.sysinfo.alias, "Kitchen kettle", "nickname decoded");
        is_str(r.sysinfo.sw_ver, "1.3.0 Build 230905 Rel.152200", "fw_ver is sw_ver");
        is_str(r.sysinfo.type, "SMART.TAPOPLUG", "type");
        ok(r.sysinfo.has_relay && r.sysinfo.on, "device_on");
        is_int(r.sysinfo.on_time, 3721, "on_time");
        ok(r.sysinfo.has_rssi && r.sysinfo.rssi == -48, "rssi");
        ok(r.sysinfo.has_emeter, "has an energy meter");
        is_int(r.realtime_err, 0, "reading from get_energy_usage despite get_emeter_data's -10000");
        is_int(r.realtime.power_mw, 1843210, "current_power is mW");
        is_int(r.realtime.total_mwh, 4117000, "month_energy Wh -> mWh");
        is_int(r.realtime.voltage_mv, 0, "no voltage without get_emeter_data");
}

static void test_kp125m(void) {
        static KasaResponse r;
        KasaError err = {};

        is_int(parse(kp125m_poll, &r, &err), 0, "KP125M energy parses");
        is_int(r.realtime_err, 0, "reading");
        is_int(r.realtime.power_mw, 1795402, "power_mw from get_emeter_data wins");
        is_int(r.realtime.voltage_mv, 229870, "voltage_mv");
        is_int(r.realtime.current_ma, 7812, "current_ma");
        is_int(r.realtime.total_mwh, 152310000, "energy_wh -> mWh");
        is_int(r.sysinfo_err, KASA_ERR_ABSENT, "no device info asked");

        is_int(parse(p110_old_poll, &r, &err), 0, "old P110 firmware parses");
        is_int(r.realtime.power_mw, 17000, "get_current_power is W");
        is_int(r.realtime.total_mwh, 12000, "month_energy");
}

static void test_strip(void) {
        static KasaResponse r;
        KasaError err = {};

        is_int(parse(p300_poll, &r, &err), 0, "P300 parses");
        diag("%s", err.message);
        is_int(r.sysinfo.n_children, 2, "two outlets");
        is_str(r.sysinfo.children[0].alias, "Lamp", "outlet nickname");
        is_str(r.sysinfo.children[1].id, "8022AAAA01", "outlet id");
        ok(r.sysinfo.children[0].on && !r.sysinfo.children[1].on, "outlet states");
        ok(!r.sysinfo.has_relay, "a strip has no relay of its own");
        is_str(r.sysinfo.mac, "5C:A6:E6:AB:CD:EF", "bare MAC");

        static const char child_reply[] =
                "{\"error_code\":0,\"result\":{\"responses\":[{\"method\":\"control_child\",\"result\":"
                "{\"responseData\":{\"error_code\":0,\"result\":{\"responses\":[{\"method\":\"set_device_info\","
                "\"error_code\":0}]}}},\"error_code\":0}]}}";
        is_int(parse(child_reply, &r, &err), 0, "control_child reply parses");
        is_int(r.relay_err, 0, "the child switched");
}

static void test_errors(void) {
        static KasaResponse r;
        KasaError err = {};

        is_int(parse("{\"error_code\":0,\"result\":{\"responses\":[{\"method\":\"set_device_info\","
                     "\"error_code\":0}]}}", &r, &err), 0, "switch reply");
        is_int(r.relay_err, 0, "switched");
        is_int(r.sysinfo_err, KASA_ERR_ABSENT, "nothing else");
        is_int(parse("{\"error_code\":-1501}", &r, &err), 0, "top-level error parses");
        is_int(r.relay_err, -1501, "and fails every method");
        is_int(r.sysinfo_err, -1501, "sysinfo too");

        static const struct {
                const char *json, *why;
        } bad[] = {
                { "{\"result\":{}}", "no error_code" },
                { "{\"error_code\":\"0\"}", "error_code a string" },
                { "{\"error_code\":0}", "success without result" },
                { "{\"error_code\":0,\"result\":{\"responses\":{}}}", "responses not an array" },
                { "{\"error_code\":0,\"result\":{\"responses\":[{\"error_code\":0}]}}", "no method" },
                { "{\"error_code\":0,\"result\":{\"responses\":[{\"method\":\"get_device_info\",\"error_code\":0}]}}",
                  "device info without result" },
                { "{\"error_code\":0,\"result\":{\"responses\":[{\"method\":\"get_energy_usage\",\"error_code\":0}]}}",
                  "energy usage without result" },
                { "{\"error_code\":0,\"result\":{\"responses\":[{\"method\":\"get_device_info\",\"error_code\":0,"
                  "\"result\":{\"device_id\":\"x\",\"model\":\"P110\",\"mac\":\"5C-A6-E6-12-34-56\","
                  "\"nickname\":\"not base64!\"}}]}}", "nickname not base64" },
                { "{\"error_code\":0,\"result\":{\"responses\":[{\"method\":\"get_device_info\",\"error_code\":0,"
                  "\"result\":{\"device_id\":\"x\",\"model\":\"P110\",\"mac\":\"5C-A6-E6-12-34-56\","
                  "\"nickname\":\"/w==\"}}]}}", "nickname not UTF-8" },
                { "{\"error_code\":0,\"result\":{\"responses\":[{\"method\":\"get_device_info\",\"error_code\":0,"
                  "\"result\":{\"device_id\":\"x\",\"model\":\"P110\",\"mac\":\"5C-A6-E6-12-34-56\","
                  "\"nickname\":\"QUI=\",\"device_on\":1}}]}}", "device_on not a boolean" },
                { "{\"error_code\":0,\"result\":{\"responses\":[{\"method\":\"get_device_info\",\"error_code\":0,"
                  "\"result\":{\"device_id\":\"x\",\"model\":\"P110\",\"mac\":\"nope\"}}]}}", "bad MAC" },
                { "{\"error_code\":0,\"result\":{\"responses\":[{\"method\":\"get_energy_usage\",\"error_code\":0,"
                  "\"result\":{\"month_energy\":-5,\"current_power\":1}}]}}", "negative energy" },
                { "{\"error_code\":0,\"result\":{\"responses\":[{\"method\":\"get_energy_usage\",\"error_code\":0,"
                  "\"result\":{\"current_power\":1}}]}}", "energy usage without month_energy" },
                { "{\"error_code\":0,\"result\":{\"responses\":[{\"method\":\"get_emeter_data\",\"error_code\":0,"
                  "\"result\":{\"power_mw\":1,\"voltage_mv\":1,\"current_ma\":1}}]}}", "emeter data without energy_wh" },
                { "{\"error_code\":0,\"result\":{\"responses\":[{\"method\":\"get_emeter_data\",\"error_code\":0,"
                  "\"result\":{\"power_mw\":1e300,\"voltage_mv\":1,\"current_ma\":1,\"energy_wh\":1}}]}}",
                  "absurd power" },
                { "{\"error_code\":0,\"result\":{\"responses\":[{\"method\":\"control_child\",\"error_code\":0,"
                  "\"result\":{\"responseData\":{\"error_code\":0,\"result\":{\"responses\":[{\"method\":"
                  "\"control_child\",\"error_code\":0,\"result\":{\"responseData\":{\"error_code\":0}}}]}}}}]}}",
                  "control_child nested" },
                { "{\"error_code\":0,\"result\":{\"responses\":[]}} x", "trailing junk" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                err.message[0] = 0;
                ok(parse(bad[i].json, &r, &err) == -EBADMSG && err.message[0], "refused: %s (%s)", bad[i].why,
                   err.message);
        }
}

#define ENERGY_DATA(body) \
        "{\"error_code\":0,\"result\":{\"responses\":[{\"method\":\"get_energy_data\",\"error_code\":0," \
        "\"result\":{" body "}}]}}"

static void test_energy_data(void) {
        static KasaResponse r;
        KasaError err = {};
        _cleanup_free_ char *q = kasa_smart_request_energy_data(1719784800, 1727733600, 1440, NULL);

        is_str(q,
               "{\"method\":\"multipleRequest\",\"params\":{\"requests\":[{\"method\":\"get_energy_data\","
               "\"params\":{\"start_timestamp\":1719784800,\"end_timestamp\":1727733600,\"interval\":1440}}]}}",
               "get_energy_data: start, end, interval in minutes");
        _cleanup_free_ char *child = kasa_smart_request_energy_data(1, 2, 1440, "8022AAAA01");
        ok(child && strstr(child, "\"control_child\"") && strstr(child, "\"get_energy_data\""),
           "an outlet's through control_child");

        is_int(parse(ENERGY_DATA("\"local_time\":\"2024-07-03 10:00:00\",\"data\":[0,120,250],"
                                 "\"start_timestamp\":1719784800,\"end_timestamp\":1727733600,\"interval\":1440"),
                     &r, &err), 0, "a daily reply parses");
        ok(r.energy_data_err == 0 && r.energy_data.n == 3 && r.energy_data.energy_mwh[1] == 120000 &&
                   r.energy_data.start_s == 1719784800 && r.energy_data.interval_min == 1440,
           "its days in mWh, its start and interval");
        is_int(parse("{\"error_code\":0,\"result\":{\"responses\":[{\"method\":\"get_energy_data\","
                     "\"error_code\":-1001}]}}", &r, &err), 0, "a refusal parses");
        is_int(r.energy_data_err, -1001, "and says so");

        static const struct {
                const char *json, *why;
        } bad[] = {
                { ENERGY_DATA("\"data\":[1],\"interval\":1440"), "no start_timestamp" },
                { ENERGY_DATA("\"data\":[1],\"start_timestamp\":1,\"interval\":30"), "interval 30" },
                { ENERGY_DATA("\"start_timestamp\":1,\"interval\":1440"), "no data" },
                { ENERGY_DATA("\"data\":[1,-2],\"start_timestamp\":1,\"interval\":1440"), "negative energy" },
                { ENERGY_DATA("\"data\":[1.5],\"start_timestamp\":1,\"interval\":1440"), "a fraction of a Wh" },
                { ENERGY_DATA("\"data\":{},\"start_timestamp\":1,\"interval\":1440"), "data not an array" },
                { "{\"error_code\":0,\"result\":{\"responses\":[{\"method\":\"get_energy_data\","
                  "\"error_code\":0}]}}", "success without a result" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                err.message[0] = 0;
                ok(parse(bad[i].json, &r, &err) == -EBADMSG && err.message[0], "energy data refused: %s (%s)",
                   bad[i].why, err.message);
        }
        /* A quarter has at most 92 days. */
        char many[1024];
        int n = snprintf(many, sizeof(many), "%s", "{\"error_code\":0,\"result\":{\"responses\":[{\"method\":"
                                                  "\"get_energy_data\",\"error_code\":0,\"result\":{"
                                                  "\"start_timestamp\":1,\"interval\":1440,\"data\":[0");
        for (int i = 1; i < KASA_ENERGY_DATA_MAX + 1; i++)
                n += snprintf(many + n, sizeof(many) - (size_t) n, ",0");
        snprintf(many + n, sizeof(many) - (size_t) n, "]}}]}}");
        ok(parse(many, &r, &err) == -EBADMSG && strstr(err.message, "93 entries, limit 92"),
           "93 days are refused (%s)", err.message);
}

static void test_base64(void) {
        char out[8];

        is_int(kasa_base64_decode("TGFtcA==", 8, out, sizeof(out)), 4, "decode");
        is_int(kasa_base64_decode("TGFtcA=", 7, out, sizeof(out)), -EBADMSG, "length not a multiple of 4");
        is_int(kasa_base64_decode("TGF=cA==", 8, out, sizeof(out)), -EBADMSG, "padding inside");
        is_int(kasa_base64_decode("TGFtcB==", 8, out, sizeof(out)), -EBADMSG, "non-zero bits under padding");
        is_int(kasa_base64_decode("TGFtcA==", 8, out, 3), -ENOBUFS, "short buffer");
        is_int(kasa_base64_decode("", 0, out, sizeof(out)), 0, "empty");
}

static void test_is_reply(void) {
        ok(kasa_smart_is_reply("{\"error_code\":-1002}", 20), "smart error reply recognised");
        ok(!kasa_smart_is_reply("{\"system\":{\"get_sysinfo\":{\"err_code\":-1}}}", 42), "IOT reply is not");
        ok(!kasa_smart_is_reply("junk", 4), "junk is not");
}

int main(void) {
        test_requests();
        test_p110();
        test_kp125m();
        test_strip();
        test_errors();
        test_energy_data();
        test_base64();
        test_is_reply();
        return done_testing();
}
