"""Per-student views of identified sessions: a student's timeline, students to check on, the summary CSV."""
