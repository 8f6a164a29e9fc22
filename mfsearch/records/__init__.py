"""What runs leave on disk, written and read in one place (layer 0: imports nothing of the
project above `common`). `runjson`: a run folder's run.json and what kind of folder it is;
`rows`: the results schema every row follows (search trials, baselines, study and
detection runs); `appended`: rows appended as they finish, with the one rule for a torn
line, so every resumable loop resumes alike; `tables`: parquet/CSV tables and best.json;
`atomic`: write-then-rename, so a reader never sees a torn file.
"""
