def main(error: dict, path: str, job_id: str, trigger_path: str | None = None) -> dict:
    print(f"{path} failed in job {job_id}: {error.get('message')}")
    return {"handled": job_id}
