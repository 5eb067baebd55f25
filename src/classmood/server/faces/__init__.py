"""Faces in view: samples in which a consenting student's camera saw no face, and who was present when.

"Face in view" is what it says: the camera saw a face. It is not attention, and nothing here calls it so.
"""
