// ohai — umbrella header of the engine's public C++ API.
#pragma once

#include "ohai/bench.h"
#include "ohai/chat.h"
#include "ohai/devices.h"
#include "ohai/engine.h"
#include "ohai/error.h"
#include "ohai/generation.h"
#include "ohai/isolation.h"
#include "ohai/log.h"
#include "ohai/model.h"
#include "ohai/quantize.h"
#include "ohai/system.h"
