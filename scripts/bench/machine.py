"""The machine a peer benchmark ran on, recorded in its JSON beside the figures (as `pissa bench`
records `machine`): CPU model, vendor/family/model, SIMD flags, load average, torch's threads."""
import os


def record():
    cpu = {}
    with open("/proc/cpuinfo") as f:
        for line in f:
            if ":" in line:
                k, v = line.split(":", 1)
                cpu.setdefault(k.strip(), v.strip())
    flags = cpu.get("flags", "").split()
    out = {"cpuModel": cpu.get("model name"),
           "cpuID": f"{cpu.get('vendor_id')} family {cpu.get('cpu family')} model {cpu.get('model')}",
           "cpuFeatures": [f for f in flags if f.startswith(("avx", "fma", "f16c", "amx"))],
           "logicalCores": os.cpu_count(), "loadAverage": os.getloadavg()[0]}
    try:
        import torch
        out["torch"] = torch.__version__
        out["torchThreads"] = torch.get_num_threads()
        out["torchCPUCapability"] = torch.backends.cpu.get_cpu_capability()
    except Exception:
        pass
    return out
