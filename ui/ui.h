/* The ncurses front end. It knows nothing of ioctls: it drives VMs through the
 * program's own interfaces (definitions, control sockets). */
#ifndef TV_UI_H
#define TV_UI_H

/* Runs the interactive interface until the user quits; returns an exit status. */
int ui_main(void);

#endif
