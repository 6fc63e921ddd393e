"""The model's headers (~ include/linux/*.h and mm/internal.h): the structures, the page flags,
the page-table entries and the small helpers every part of mm/ shares. Nothing here imports
mm/, so any mm/ module may use any of it."""
