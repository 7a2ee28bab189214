/* A program slim exec must recognise as static: built with gcc -static by
 * the tests of exec_target_linux.go. */
int main(void)
{
	return 0;
}
