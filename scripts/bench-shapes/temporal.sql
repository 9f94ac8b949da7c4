-- timestamptz, date, numeric, float, text[] and inet columns (psql -v rows=N). Deterministic.
CREATE TABLE public.measurements (
    id bigint PRIMARY KEY, taken_at timestamptz NOT NULL, day date, amount numeric(14, 4), ratio double precision,
    labels text[], client inet
);
INSERT INTO public.measurements
SELECT i, timestamptz '2024-01-01 00:00:00+00' + i * interval '17.123 seconds', date '2020-01-01' + i % 2000,
       (i * 1.2345)::numeric(14, 4), (i % 1000) / 7.0,
       CASE WHEN i % 5 = 0 THEN NULL ELSE ARRAY['l' || (i % 11), 'label with space', 'q"' || (i % 3)] END,
       ('10.' || (i % 256) || '.' || (i / 256 % 256) || '.' || (i % 250 + 1))::inet
FROM generate_series(1, :rows) AS i;
