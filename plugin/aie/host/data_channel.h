// ohai — host code includes ai_engine's request/response declarations through this header.
//
// The data channel (IRequest/IResponse member functions, data_channel.cpp) must be exported from
// whatever holds the host, because plugins resolve it at load time; the rest of the host is
// compiled with hidden visibility. On ELF the most restrictive visibility seen by the linker wins,
// so every translation unit that refers to these functions must declare them with default
// visibility too: include this header before any other aie/ header.
#pragma once

#pragma GCC visibility push(default)
#include "aie/request.h"
#include "aie/response.h"
#pragma GCC visibility pop
