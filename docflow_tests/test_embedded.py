"""The embedded services for real: pgserver's Postgres + pgvector and SeaweedFS, in temp homes, on free ports
(so a `make dev` instance on the default ports is left alone)."""

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import psycopg2
import pytest
import sqlalchemy
from ports import free, free_block

from docflow.embedded import ServiceUrls, ensure_services, service_env, stop_services
from docflow.embedded._process import port_open
from docflow.embedded.postgres import ensure_postgres, running_server, stop_postgres
from docflow.embedded.s3 import running_state, s3_client, service_ports
from docflow.errors import BackendUnavailable, ConfigError
from docflow.settings import Settings

pytestmark = pytest.mark.slow


def _free_ports() -> tuple[int, int]:
    """A free Postgres port and a free S3 port whose whole SeaweedFS port set is free too."""
    for _ in range(50):
        pg_port = free_block(10)  # Postgres on the first port, SeaweedFS on the 9 after it
        s3_port = pg_port + 1
        if all(free(port) for port in service_ports(s3_port).values()):
            return pg_port, s3_port
    raise RuntimeError("no free ports")


def _settings(home: Path) -> Settings:
    pg_port, s3_port = _free_ports()
    # explicit Nones: the embedded default, whatever the environment of the test session says
    return Settings(
        home=home,
        embedded_pg_port=pg_port,
        embedded_s3_port=s3_port,
        bucket="docflow-test",
        database_url=None,
        dagster_database_url=None,
        s3_endpoint_url=None,
        aws_access_key_id=None,
        aws_secret_access_key=None,
    )


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    settings = _settings(tmp_path_factory.mktemp("embedded"))
    yield settings
    stop_services(settings)


@pytest.fixture(scope="module")
def urls(settings: Settings) -> ServiceUrls:
    return ensure_services(settings)


def test_urls_point_at_loopback_tcp(settings: Settings, urls: ServiceUrls) -> None:
    pg, s3 = settings.embedded_pg_port, settings.embedded_s3_port
    assert urls == ServiceUrls(
        f"postgresql://postgres@127.0.0.1:{pg}/docflow",
        f"postgresql://postgres@127.0.0.1:{pg}/dagster",
        f"http://127.0.0.1:{s3}",
    )


def test_second_call_reuses_the_running_services(settings: Settings, urls: ServiceUrls) -> None:
    home = settings.home.resolve()
    pg_pid, s3_pid = running_server(home), running_state(home)
    started = time.monotonic()
    assert ensure_services(settings) == urls
    assert time.monotonic() - started < 2.0
    assert running_server(home) == pg_pid
    assert running_state(home) == s3_pid


def test_pgvector_table_with_hnsw_index(urls: ServiceUrls) -> None:
    with psycopg.connect(urls.database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, embedding vector(3))")
        conn.execute("CREATE INDEX ON items USING hnsw (embedding vector_cosine_ops)")
        conn.execute("INSERT INTO items VALUES (1, '[1,0,0]'), (2, '[0,1,0]'), (3, '[0.9,0.1,0]')")
        conn.execute("SET enable_seqscan = off")
        plan = "\n".join(
            row[0] for row in conn.execute("EXPLAIN SELECT id FROM items ORDER BY embedding <=> '[1,0,0]'")
        )
        nearest = [
            row[0] for row in conn.execute("SELECT id FROM items ORDER BY embedding <=> '[1,0,0]' LIMIT 2")
        ]
    assert nearest == [1, 3]
    assert "items_embedding_idx" in plan


def test_dagster_url_works_with_psycopg2_and_sqlalchemy(urls: ServiceUrls) -> None:
    with psycopg2.connect(urls.dagster_database_url) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT current_database()")
        assert cursor.fetchone() == ("dagster",)
    engine = sqlalchemy.create_engine(urls.dagster_database_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sqlalchemy.text("SELECT current_user")).scalar() == "postgres"
    finally:
        engine.dispose()


def test_s3_bucket_exists_and_round_trips(settings: Settings, urls: ServiceUrls) -> None:
    assert urls.s3_endpoint_url
    client = s3_client(urls.s3_endpoint_url)
    client.head_bucket(Bucket=settings.bucket)
    body = uuid.uuid4().bytes * 1000
    client.put_object(Bucket=settings.bucket, Key="incoming/default/a.bin", Body=body)
    assert client.get_object(Bucket=settings.bucket, Key="incoming/default/a.bin")["Body"].read() == body
    listed = client.list_objects_v2(Bucket=settings.bucket, Prefix="incoming/")
    assert [obj["Key"] for obj in listed["Contents"]] == ["incoming/default/a.bin"]


@pytest.mark.parametrize("access_key", ["docflow", "someone-else"])
def test_s3_accepts_any_credentials(settings: Settings, urls: ServiceUrls, access_key: str) -> None:
    import boto3

    assert urls.s3_endpoint_url
    client = boto3.client(
        "s3",
        endpoint_url=urls.s3_endpoint_url,
        aws_access_key_id=access_key,
        aws_secret_access_key="whatever",
        region_name="us-east-1",
    )
    client.put_object(Bucket=settings.bucket, Key=f"creds/{access_key}", Body=b"ok")
    assert client.get_object(Bucket=settings.bucket, Key=f"creds/{access_key}")["Body"].read() == b"ok"


def test_service_env_for_the_embedded_default(settings: Settings, urls: ServiceUrls) -> None:
    assert service_env(settings) == {
        "DOCFLOW_DATABASE_URL": urls.database_url,
        "DOCFLOW_DAGSTER_DATABASE_URL": urls.dagster_database_url,
        "DOCFLOW_S3_ENDPOINT_URL": urls.s3_endpoint_url,
        "AWS_ACCESS_KEY_ID": "docflow",
        "AWS_SECRET_ACCESS_KEY": "docflow",
    }


@pytest.mark.parametrize(
    ("dagster_url", "expected_dagster_url"),
    [
        (None, "postgresql://u:p@db.example:5432/docflow"),
        ("postgresql://d@other/dagster", "postgresql://d@other/dagster"),
    ],
)
def test_service_env_with_configured_services_starts_nothing(
    tmp_path: Path, dagster_url: str | None, expected_dagster_url: str
) -> None:
    settings = Settings(
        home=tmp_path / "home",
        database_url="postgresql://u:p@db.example:5432/docflow",
        dagster_database_url=dagster_url,
        s3_endpoint_url="https://minio.example",
        aws_access_key_id="AK",
        aws_secret_access_key="SK",
    )
    assert service_env(settings) == {
        "DOCFLOW_DATABASE_URL": "postgresql://u:p@db.example:5432/docflow",
        "DOCFLOW_DAGSTER_DATABASE_URL": expected_dagster_url,
        "DOCFLOW_S3_ENDPOINT_URL": "https://minio.example",
        "AWS_ACCESS_KEY_ID": "AK",
        "AWS_SECRET_ACCESS_KEY": "SK",
    }
    assert stop_services(settings) == []
    assert not (tmp_path / "home").exists()


@pytest.mark.parametrize("service", ["postgres", "s3"])
def test_a_port_taken_by_another_process_is_reported(tmp_path: Path, service: str) -> None:
    settings = _settings(tmp_path)
    port = settings.embedded_pg_port if service == "postgres" else settings.embedded_s3_port
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        if service == "postgres":
            settings = settings.model_copy(update={"s3_endpoint_url": "http://unused"})
        else:
            settings = settings.model_copy(update={"database_url": "postgresql://unused"})
        with pytest.raises(ConfigError, match=f"port {port}.* already in use"):
            ensure_services(settings)
    assert stop_services(settings) == []


def test_start_failure_quotes_the_log(tmp_path: Path) -> None:
    data = tmp_path / "pg" / "data"
    data.mkdir(parents=True)
    (data / "PG_VERSION").write_text("16\n")  # looks initialised, but has no config: postgres cannot start
    pg_port, _ = _free_ports()
    with pytest.raises(BackendUnavailable, match=r"(?s)failed to start.*postgres\.log.*postgresql\.conf"):
        ensure_postgres(tmp_path, pg_port, timeout=15)
    assert running_server(tmp_path) is None


def test_concurrent_starts_make_one_server(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    results: list[object] = []

    def start() -> None:
        try:
            results.append(ensure_services(settings))
        except Exception as exc:  # collected and asserted below
            results.append(exc)

    threads = [threading.Thread(target=start) for _ in range(3)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert len(results) == 3
        assert all(isinstance(result, ServiceUrls) for result in results), results
        assert len(set(results)) == 1
    finally:
        stop_services(settings)


def test_stop_closes_the_ports_and_a_restart_keeps_the_data(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    try:
        urls = ensure_services(settings)
        with psycopg.connect(urls.database_url, autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (v text)")
            conn.execute("INSERT INTO kept VALUES ('still here')")
        assert urls.s3_endpoint_url
        s3_client(urls.s3_endpoint_url).put_object(Bucket=settings.bucket, Key="kept.txt", Body=b"me too")

        assert stop_services(settings) == ["s3", "postgres"]
        ports = [settings.embedded_pg_port, *service_ports(settings.embedded_s3_port).values()]
        assert not any(port_open(port) for port in ports)
        assert running_server(tmp_path) is None and running_state(tmp_path) is None
        assert stop_services(settings) == []

        assert ensure_services(settings) == urls
        with psycopg.connect(urls.database_url) as conn:
            assert conn.execute("SELECT v FROM kept").fetchall() == [("still here",)]
        body = (
            s3_client(urls.s3_endpoint_url).get_object(Bucket=settings.bucket, Key="kept.txt")["Body"].read()
        )
        assert body == b"me too"
    finally:
        stop_services(settings)


def test_stop_postgres_alone(tmp_path: Path) -> None:
    pg_port, _ = _free_ports()
    url = ensure_postgres(tmp_path, pg_port)
    assert url.endswith(f":{pg_port}/docflow")
    assert stop_postgres(tmp_path) is True
    assert stop_postgres(tmp_path) is False
    assert not port_open(pg_port)


@pytest.mark.parametrize(
    ("ram_gib", "shared_buffers", "maintenance_work_mem"),
    [(0.25, "128MB", "64MB"), (2, "512MB", "128MB"), (24, "4096MB", "1024MB"), (64, "4096MB", "1024MB")],
)
def test_embedded_postgres_memory_follows_the_machine(
    ram_gib: float, shared_buffers: str, maintenance_work_mem: str
) -> None:
    from docflow.embedded.postgres import server_settings

    settings = server_settings(int(ram_gib * 2**30))
    assert settings["shared_buffers"] == shared_buffers
    assert settings["maintenance_work_mem"] == maintenance_work_mem
