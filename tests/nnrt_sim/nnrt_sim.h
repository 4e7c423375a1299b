// ohai — the test-facing side of the simulated NNRt device (tests/nnrt_sim/, test-only).
//
// Besides the OH_NN* functions of plugin/nnrt/nnrt_api.h, libneural_network_core.so of the
// simulator exports these functions so that tests can see what the adapter did (counters) and
// make the device misbehave (faults). A test resolves them with dlsym() from the handle of the
// core library, exactly as it resolves the NNRt API; the PFN_ types are here for that. A real
// NNRt library has none of them, so an adapter must never need them.
//
// Environment (read when libneural_network_core.so loads; ohai_nnrt_sim_reload_faults() reads it
// again):
//   OHAI_NNRT_SIM_FAULT    comma-separated list of:
//                            no_devices         the device list is empty (GetAllDevicesID count 0,
//                                               every device id unknown)
//                            op_unsupported     GetAvailableOperations answers false for every op,
//                                               so Build fails with OH_NN_FAILED
//                            build_fail         Build returns OH_NN_FAILED
//                            run_fail           RunSync returns OH_NN_FAILED
//                            fail_after:N       the first N RunSync calls (that reach the device)
//                                               after the faults were (re)loaded succeed, every
//                                               later one returns OH_NN_FAILED
//                            wrong_output_size  CreateOutputTensorDesc reports a shape whose last
//                                               dimension is one larger than the model's, and
//                                               RunSync expects output tensors of that size and
//                                               writes rows padded with NaN in that layout
//   OHAI_NNRT_SIM_SLOW_US  sleep this many microseconds in every RunSync (per-call overhead)
//   OHAI_NNRT_SIM_THREADS  threads for one large matrix product (default: hardware concurrency)
//   OHAI_NNRT_SIM_LOG      1: print every rejected call and its reason to stderr
// Read at process exit (or when the core library is unloaded):
//   OHAI_NNRT_SIM_STATS    path of a file that receives ohai_nnrt_sim_stats_json(); "%p" in the
//                          path is replaced by the process id
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// The simulated accelerator, as GetAllDevicesID / GetName / GetType report it.
#define OHAI_NNRT_SIM_DEVICE_ID ((size_t)0x9e3779b97f4a7c15ULL)
#define OHAI_NNRT_SIM_DEVICE_NAME "ohai_sim_npu_ohai_v1_0"

// Counters as one JSON object (keys below). The string stays valid until the calling thread
// calls this function again.
//   models_alive, compilations_alive, executors_alive, tensors_alive, tensor_descs_alive
//       objects created and not destroyed yet (never reset)
//   builds, build_failures      Build calls that succeeded / failed (any reason)
//   runs, run_failures          RunSync calls that succeeded / failed (any reason)
//   cache_hits, cache_writes    Builds that found their cache file / wrote it
//   available_ops_queries       successful GetAvailableOperations calls
//   ops_executed, macs          operations computed by RunSync, multiply-accumulates done
//   bad_handles                 calls given a non-NULL handle that is not a live object
//   devices                     devices currently reported
//   faults                      the active OHAI_NNRT_SIM_FAULT value (string)
//   calls                       object: exported function name -> number of calls
typedef const char *(*PFN_ohai_nnrt_sim_stats_json)(void);

// One counter by its JSON key, or "calls.<function name>" (0 when never called); -1 for an
// unknown key.
typedef long long (*PFN_ohai_nnrt_sim_stat)(const char *key);

// Zeroes the event counters (not the *_alive counts, which describe live objects).
typedef void (*PFN_ohai_nnrt_sim_reset_stats)(void);

// Reads OHAI_NNRT_SIM_FAULT / OHAI_NNRT_SIM_SLOW_US / OHAI_NNRT_SIM_THREADS / OHAI_NNRT_SIM_LOG
// again and restarts the fail_after count. 0 when every fault named was understood, -1 otherwise
// (the understood ones are applied).
typedef int (*PFN_ohai_nnrt_sim_reload_faults)(void);

// Why the last rejected call on this thread was rejected ("" when none).
typedef const char *(*PFN_ohai_nnrt_sim_last_error)(void);

#ifdef __cplusplus
}  // extern "C"
#endif
