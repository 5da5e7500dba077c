"""Files on disk: chat.log and its segments, the checkpoint ``room.json``, the resume key and counts, accounts.db.

Everything a member's data touches is written 0600 (``private_files.py``), atomically or
one ``write(2)`` at a time, so a SIGKILL or a full disk never leaves a torn record.
"""
