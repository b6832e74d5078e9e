// Everything a job plugin needs: include this one header.
#pragma once

#include "program_executor/sdk/abi.hpp"
#include "program_executor/sdk/errors.hpp"
#include "program_executor/sdk/job.hpp"
#include "program_executor/sdk/plugin.hpp"
