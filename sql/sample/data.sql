-- Deterministic sample data, about 12,700 rows at scale 1.
-- Scale it with the setting sample.scale, e.g. PGOPTIONS='-c sample.scale=10' psql -f data.sql.
CREATE TEMP TABLE sample_scale AS
    SELECT coalesce(nullif(current_setting('sample.scale', true), ''), '1')::integer AS n;

INSERT INTO public.users (id, email, display_name, settings, created_at)
SELECT md5('user' || i)::uuid, 'user' || i || '@example.com',
       CASE WHEN i % 7 = 0 THEN NULL ELSE 'User ' || i || CASE WHEN i % 11 = 0 THEN ' “Zoë” \ O''Brien' ELSE '' END END,
       jsonb_build_object('theme', CASE WHEN i % 2 = 0 THEN 'dark' ELSE 'light' END, 'beta', i % 5 = 0),
       timestamptz '2025-01-01' + (i || ' hours')::interval
FROM generate_series(1, 200 * (SELECT n FROM sample_scale)) AS i;

INSERT INTO public.projects (owner_id, title, status, tags, metadata, created_at, updated_at)
SELECT md5('user' || (1 + i % (200 * (SELECT n FROM sample_scale))))::uuid, 'Project ' || i,
       (ARRAY['draft', 'rendering', 'published', 'archived'])[1 + i % 4]::public.project_status,
       ARRAY['tag' || (i % 5), 'lang:' || CASE WHEN i % 3 = 0 THEN 'de' ELSE 'en' END],
       CASE WHEN i % 4 = 0 THEN NULL ELSE jsonb_build_object('resolution', '1080p', 'fps', 30, 'ratio', 1.7777777777777777) END,
       timestamptz '2025-02-01' + (i || ' minutes')::interval,
       CASE WHEN i % 3 = 0 THEN timestamptz '2025-06-01' + (i || ' seconds')::interval END
FROM generate_series(1, 500 * (SELECT n FROM sample_scale)) AS i;

INSERT INTO public.slides (project_id, position, content, speaker_notes, duration_ms)
SELECT p.id, s, jsonb_build_object('title', 'Slide ' || s, 'blocks', jsonb_build_array('text', s)),
       CASE WHEN s % 2 = 0 THEN E'Say:\n"hello"\tthen pause' END, 3000 + s * 250
FROM public.projects p CROSS JOIN generate_series(1, 6) AS s;

INSERT INTO public.render_jobs (id, project_id, state, attempts, error, progress, started_at, finished_at)
SELECT md5('job' || p.id)::uuid, p.id, (ARRAY['queued', 'running', 'done', 'failed'])[1 + p.id % 4]::public.job_state,
       (p.id % 3)::smallint, CASE WHEN p.id % 4 = 3 THEN 'ffmpeg exited with 1' END,
       CASE WHEN p.id % 4 = 1 THEN 0.5 ELSE 1.0 END, p.created_at, CASE WHEN p.id % 4 = 2 THEN p.created_at + interval '5 minutes' END
FROM public.projects p;

INSERT INTO public.courses (owner_id, title, price, published)
SELECT md5('user' || (1 + i % (200 * (SELECT n FROM sample_scale))))::uuid, 'Course ' || i, (i * 7.5)::numeric(10, 2), i % 2 = 0
FROM generate_series(1, 40 * (SELECT n FROM sample_scale)) AS i;

INSERT INTO public.videos (course_id, project_id, url, duration, size_bytes, checksum)
SELECT 1 + i % (40 * (SELECT n FROM sample_scale)), 1 + i % (500 * (SELECT n FROM sample_scale)), 'https://cdn.example.com/v/' || i || '.mp4',
       (i * 17 || ' seconds')::interval, 1048576::bigint * i, decode(md5('v' || i), 'hex')
FROM generate_series(1, 300 * (SELECT n FROM sample_scale)) AS i;

INSERT INTO public.nr_courses (id, title, first_module_id)
SELECT i, 'NR course ' || i, NULL FROM generate_series(1, 20 * (SELECT n FROM sample_scale)) AS i;
INSERT INTO public.nr_modules (id, course_id, title, ordinal)
SELECT i, 1 + (i - 1) / 5, 'Module ' || i, 1 + (i - 1) % 5 FROM generate_series(1, 100 * (SELECT n FROM sample_scale)) AS i;
UPDATE public.nr_courses SET first_module_id = (id - 1) * 5 + 1;

INSERT INTO public.analytics_events (occurred_at, user_id, event, properties)
SELECT timestamptz '2025-06-01' + (i * 780 / (SELECT n FROM sample_scale) || ' seconds')::interval, md5('user' || (1 + i % (200 * (SELECT n FROM sample_scale))))::uuid,
       (ARRAY['view', 'play', 'pause', 'share'])[1 + i % 4],
       CASE WHEN i % 10 = 0 THEN 'null'::jsonb WHEN i % 3 = 0 THEN NULL ELSE jsonb_build_object('slide', i % 6, 'ms', i) END
FROM generate_series(1, 5000 * (SELECT n FROM sample_scale)) AS i;

INSERT INTO public.project_analytics (project_id, day, views, watch_seconds)
SELECT p.id, date '2025-07-01' + d, (p.id * d) % 97, ((p.id * d) % 1000) / 3.0
FROM public.projects p CROSS JOIN generate_series(0, 2) AS d;

INSERT INTO public.project_collaborators (project_id, user_id, role)
SELECT p.id, md5('user' || (1 + (p.id * 3) % (200 * (SELECT n FROM sample_scale))))::uuid, (ARRAY['viewer', 'editor', 'admin'])[1 + p.id % 3]
FROM public.projects p WHERE p.owner_id <> md5('user' || (1 + (p.id * 3) % (200 * (SELECT n FROM sample_scale))))::uuid;

INSERT INTO public.project_comments (project_id, author_id, parent_id, body)
SELECT 1 + i % (500 * (SELECT n FROM sample_scale)), md5('user' || (1 + i % (200 * (SELECT n FROM sample_scale))))::uuid,
       CASE WHEN i > 10 AND i % 3 = 0 THEN i - 10 END, 'Comment ' || i || ' 👍'
FROM generate_series(1, 1000 * (SELECT n FROM sample_scale)) AS i;

DROP TABLE sample_scale;
ANALYZE;
