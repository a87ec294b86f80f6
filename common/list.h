/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * list.h — intrusive doubly linked lists, for objects that sit in a queue
 * of their owner's (regions waiting for their grants or for a spare view
 * file, direct connections of the server) and must leave it in O(1) from
 * wherever they are. An item has two pointer members, name##_prev and
 * name##_next; the head is a plain pointer to the first item. Whether an
 * item is in the list is the caller's to know (a flag, or the head):
 * removing an item that is not in it, when it is not the head, changes
 * nothing.
 */
#pragma once

/* Puts item, in no list, first in the list at head. */
#define LIST_PREPEND(name, head, item)                                          \
        do {                                                                    \
                (item)->name##_prev = NULL;                                     \
                (item)->name##_next = (head);                                   \
                if (head)                                                       \
                        (head)->name##_prev = (item);                           \
                (head) = (item);                                                \
        } while (0)

/* Takes item out of the list at head, leaving both its pointers NULL. */
#define LIST_REMOVE(name, head, item)                                           \
        do {                                                                    \
                if ((item)->name##_prev)                                        \
                        (item)->name##_prev->name##_next = (item)->name##_next; \
                else if ((head) == (item))                                      \
                        (head) = (item)->name##_next;                           \
                if ((item)->name##_next)                                        \
                        (item)->name##_next->name##_prev = (item)->name##_prev; \
                (item)->name##_prev = (item)->name##_next = NULL;               \
        } while (0)
