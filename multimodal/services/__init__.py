"""Every write and every search goes through a function here; views, commands and tasks call them."""
