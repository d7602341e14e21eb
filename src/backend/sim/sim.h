/* Private to the sim kind: its ops (ops_sim.c) open the device's arenas around each call
 * (device_sim.c). In strict mode the arenas are inaccessible outside these brackets. */
#ifndef STRATA_BACKEND_SIM_SIM_H
#define STRATA_BACKEND_SIM_SIM_H

#include "backend/device.h"

void sim_enter(backend_device *dev);
void sim_leave(backend_device *dev);

#endif
