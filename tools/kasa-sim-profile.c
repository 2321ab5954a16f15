/* SPDX-License-Identifier: MIT */
/*
 * Device profiles. Field names, types and values follow dumps of real
 * devices; the simulator carries them itself so it never depends on files
 * outside the project.
 */

#include <string.h>

#include "kasa-sim.h"
#include "macro.h"

static const SimProfile profiles[] = {
        {
                .name = "hs100",
                .model = "HS100(US)",
                .hw_ver = "2.0",
                .sw_ver = "1.5.6 Build 191118 Rel.140307",
                .dev_name = "Smart Wi-Fi Plug",
                .type_key = "type",
                .feature = "TIM",
                .oui = { 0x50, 0xC7, 0xBF },
                .mains_mv = 120000,
                .default_load_mw = 40000,
        },
        {
                .name = "hs110",
                .model = "HS110(EU)",
                .hw_ver = "1.0",
                .sw_ver = "1.2.5 Build 171213 Rel.101523",
                .dev_name = "Wi-Fi Smart Plug With Energy Monitoring",
                .type_key = "type",
                .feature = "TIM:ENE",
                .oui = { 0x50, 0xC7, 0xBF },
                .emeter = true,
                .units = KASA_UNITS_FLOAT,
                .mains_mv = 230000,
                .default_load_mw = 60000,
                .geo_float = true,
        },
        {
                .name = "kp115",
                .model = "KP115(US)",
                .hw_ver = "1.0",
                .sw_ver = "1.0.16 Build 210205 Rel.163735",
                .dev_name = "Smart Wi-Fi Plug Mini",
                .type_key = "mic_type",
                .feature = "TIM:ENE",
                .oui = { 0xB0, 0xA7, 0xB9 },
                .emeter = true,
                .units = KASA_UNITS_MILLI,
                .mains_mv = 120000,
                .default_load_mw = 100000,
                .has_status = true,
                .has_obd = true,
        },
        {
                .name = "hs300",
                .model = "HS300(US)",
                .hw_ver = "2.0",
                .sw_ver = "1.0.12 Build 220121 Rel.175814",
                .type_key = "mic_type",
                .feature = "TIM:ENE",
                .oui = { 0xC0, 0x06, 0xC3 },
                .n_outlets = 6,
                .emeter = true,
                .units = KASA_UNITS_MILLI,
                .mains_mv = 120000,
                .default_load_mw = 25000,
                .has_status = true,
        },
        {
                .name = "kp303",
                .model = "KP303(US)",
                .hw_ver = "2.0",
                .sw_ver = "1.0.9 Build 240131 Rel.141407",
                .type_key = "mic_type",
                .feature = "TIM",
                .oui = { 0xB0, 0xA7, 0xB9 },
                .n_outlets = 3,
                .mains_mv = 120000,
                .default_load_mw = 15000,
                .has_status = true,
                .has_obd = true,
        },
        {
                /* Sold since 2023 with KLAP firmware only (give it "klap"). */
                .name = "kp125m",
                .model = "KP125M(US)",
                .hw_ver = "1.0",
                .sw_ver = "1.1.3 Build 230801 Rel.092557",
                .dev_name = "Smart Wi-Fi Plug Mini with Energy Monitoring",
                .type_key = "mic_type",
                .feature = "TIM:ENE",
                .oui = { 0x3C, 0x52, 0xA1 },
                .emeter = true,
                .units = KASA_UNITS_MILLI,
                .mains_mv = 120000,
                .default_load_mw = 80000,
                .has_status = true,
                .has_obd = true,
        },
        {
                /* Tapo P110 on firmware 1.3 (KLAP v2 only: give it "klap"). */
                .name = "p110",
                .model = "P110",
                .hw_ver = "1.0",
                .sw_ver = "1.3.0 Build 230905 Rel.152200",
                .type_key = "type",
                .feature = "TIM:ENE",
                .oui = { 0x5C, 0xA6, 0xE6 },
                .emeter = true,
                .units = KASA_UNITS_MILLI,
                .mains_mv = 230000,
                .default_load_mw = 60000,
                .smart = true,
        },
        {
                /* Tapo P300: three outlets, no meter, the smart dialect
                 * (give it "klap" or "aes"); outlets through control_child. */
                .name = "p300",
                .model = "P300",
                .hw_ver = "1.0",
                .sw_ver = "1.0.13 Build 230925 Rel.150200",
                .type_key = "type",
                .feature = "TIM",
                .oui = { 0x78, 0x8C, 0xB5 },
                .n_outlets = 3,
                .mains_mv = 230000,
                .default_load_mw = 20000,
                .smart = true,
        },
};

const SimProfile *sim_profile_find(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(profiles); i++)
                if (strcmp(profiles[i].name, name) == 0)
                        return &profiles[i];
        return NULL;
}

const char *sim_profile_names(void) {
        return "hs100 hs110 kp115 hs300 kp303 kp125m p110 p300";
}
