// ohai — the ai_engine return codes a plugin and its host use (values from ai_engine's
// AieInnerCode; prefixed RETCODE_ there as well).
#pragma once

namespace OHOS {
namespace AI {

enum AieRetCode {
    RETCODE_SUCCESS = 0,
    RETCODE_FAILURE = -1,
    RETCODE_OUT_OF_MEMORY = 1001,
    RETCODE_NULL_PARAM = 1002,
    RETCODE_INVALID_PARAM = 1006,
    RETCODE_SO_LACK_SYMBOL = 1200,
    RETCODE_PLUGIN_LOAD_FAILED = 1201,
    RETCODE_OPEN_SO_FAILED = 1202,
    RETCODE_WRONG_INFER_MODE = 1207,
    RETCODE_ASYNC_CB_STARTED = 1208,
    RETCODE_SYNC_MSG_TIMEOUT = 1300,
    RETCODE_ASYNC_MSG_TIMEOUT = 1301,
    RETCODE_QUEUE_FULL = 1500,
    RETCODE_ALGORITHM_PROCESS_ERROR = 1700,
};

}  // namespace AI
}  // namespace OHOS
