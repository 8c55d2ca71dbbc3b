"""A job process's resource limits besides memory: CPU time, open files, processes, file size.

The child sets them on itself before the script runs (the python3 wrapper with ``setrlimit``,
bash with ``ulimit``), soft and hard alike, so the script cannot raise them again. The hard CPU
limit is one second above the soft one: at the soft limit the kernel sends SIGXCPU, which names
the cause, where at the hard limit it sends SIGKILL. The process
limit counts every process and thread of the job's user, as the kernel does (``RLIMIT_NPROC``),
not only those of one job.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.settings import Settings


@dataclass(frozen=True, slots=True)
class JobLimits:
    """Per-process limits of a job; None means none."""

    cpu_s: int | None = None
    open_files: int | None = None
    processes: int | None = None
    file_bytes: int | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> JobLimits:
        """The limits the `job_*` settings name."""
        return cls(
            cpu_s=settings.job_cpu_limit_s,
            open_files=settings.job_max_open_files,
            processes=settings.job_max_processes,
            file_bytes=settings.job_max_file_bytes,
        )

    def wrapper_argument(self) -> str:
        """The limits as the python3 wrapper reads them: ``cpu,files,processes,bytes`` (0: none)."""
        values = (self.cpu_s, self.open_files, self.processes, self.file_bytes)
        return ",".join(str(value or 0) for value in values)

    def ulimit_options(self) -> list[str]:
        """bash ``ulimit`` options setting these limits but CPU time (file size in KiB)."""
        options: list[str] = []
        if self.open_files:
            options += ["-n", str(self.open_files)]
        if self.processes:
            options += ["-u", str(self.processes)]
        if self.file_bytes:
            options += ["-f", str(max(1, self.file_bytes // 1024))]
        return options


NO_LIMITS = JobLimits()
